package localcluster

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
)

// controllerNames are the kube-controller-manager controllers batch and web workloads need. The node
// lifecycle controller is deliberately absent: KWOK nodes never heartbeat into it.
var controllerNames = []string{
	names.JobController,
	names.ReplicaSetController,
	names.DeploymentController,
	names.GarbageCollectorController,
	names.NamespaceController,
	names.ServiceAccountController,
	names.TTLAfterFinishedController,
	names.PodGarbageCollectorController,
	// kube-root-ca.crt in every namespace: the kubelet of a real node mounts it into each pod's
	// service-account volume and waits for it.
	names.RootCACertificatePublisherController,
}

// startControllers runs the kube-controller-manager controllers in process until ctx is cancelled. It
// reuses the feature gates the apiserver set (they are process-global). done is closed when they stop.
func startControllers(ctx context.Context, kubeconfig string, qps float32, burst int) (done chan error, err error) {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager options: %w", err)
	}
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, f := range s.Flags(kcm.KnownControllers(), kcm.ControllersDisabledByDefault(), kcm.ControllerAliases()).FlagSets {
		fs.AddFlagSet(f)
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + strings.Join(controllerNames, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		// The defaults (20/30) throttle the Job and ReplicaSet controllers under a batch load.
		fmt.Sprintf("--kube-api-qps=%g", qps),
		fmt.Sprintf("--kube-api-burst=%d", burst),
		"--concurrent-job-syncs=10",
	}
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("kube-controller-manager flags: %w", err)
	}
	c, err := s.Config(ctx, kcm.KnownControllers(), kcm.ControllersDisabledByDefault(), kcm.ControllerAliases())
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager config: %w", err)
	}
	// Client-go warnings are about the controllers' own generic watches; they are noise here.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	done = make(chan error, 1)
	go func() {
		done <- kcm.Run(ctx, c.Complete())
		close(done)
	}()
	return done, nil
}
