package localcluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// apiServer is a running kube-apiserver.
type apiServer struct {
	// loopback is the apiserver's own superuser client config (bearer token, loopback CA and server name).
	loopback *rest.Config
	// done is closed when the apiserver has stopped; err holds why.
	done chan struct{}
	err  error
}

// startAPIServer starts kube-apiserver on a free loopback port, backed by the etcd at etcdURL, with the given
// feature gates (see Options.FeatureGates), and waits for /readyz. It stops when ctx is cancelled; wait on done.
func startAPIServer(ctx context.Context, dir, etcdURL string, gates map[string]bool) (*apiServer, error) {
	saKey, err := writeServiceAccountKey(filepath.Join(dir, "sa.key"))
	if err != nil {
		return nil, err
	}
	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--endpoint-reconciler-type=none",
		"--authorization-mode=RBAC",
		// Real nodes (package realnode) are named kubehtc-real-N, which no resolver knows; reach them by IP.
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		// As kubeadm and managed clusters run it: the CSI node plugin and the snapshotter installer are
		// privileged DaemonSets (deploy/charts/kubehtc), which deploy/deploytest applies.
		"--allow-privileged=true",
		// Pitfall 1 of ARCHITECTURE.md: without the node lifecycle controller nothing would ever remove the
		// not-ready taint this plugin puts on new nodes.
		"--disable-admission-plugins=TaintNodesByCondition",
		// Pitfall 3: a service-account issuer and signing key are mandatory.
		"--service-account-issuer=https://kubehtc.local",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		// Every client here is the loopback superuser; fairness queuing would only cost CPU.
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--max-requests-inflight=2000",
		"--max-mutating-requests-inflight=1000",
	}
	args = append(args, featureGateArgs(gates)...)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("kube-apiserver flags: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver listener: %w", err)
	}
	s.SecureServing.Listener = l
	s.SecureServing.BindPort = l.Addr().(*net.TCPAddr).Port

	// Set applies --feature-gates to the process-global gates (utilfeature.DefaultMutableFeatureGate) that the
	// controllers and the scheduler read too; their own option parsing keeps them (SetFallback does nothing
	// once Set ran).
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		l.Close()
		return nil, fmt.Errorf("kube-apiserver feature gates: %w", err)
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		l.Close()
		return nil, fmt.Errorf("kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	config, err := app.NewConfig(completed)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("kube-apiserver config: %w", err)
	}
	cc, err := config.Complete()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("kube-apiserver config: %w", err)
	}
	server, err := app.CreateServerChain(cc)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	a := &apiServer{
		loopback: rest.CopyConfig(server.GenericAPIServer.LoopbackClientConfig),
		done:     make(chan struct{}),
	}
	go func() {
		defer close(a.done)
		a.err = prepared.Run(ctx)
	}()
	if err := a.waitReady(ctx); err != nil {
		return a, err
	}
	return a, nil
}

// gateAPIVersions are the API versions, off by default, that serve the objects of a feature gate.
var gateAPIVersions = map[string][]string{
	// Workload and PodGroup (k8s.io/api/scheduling/v1beta1, Kubernetes 1.37).
	"GenericWorkload": {"scheduling.k8s.io/v1beta1"},
}

// featureGateArgs returns the kube-apiserver flags for gates: --feature-gates with the gates sorted by name, and
// --runtime-config turning on the API versions of the enabled gates (gateAPIVersions). No gates, no flags.
func featureGateArgs(gates map[string]bool) []string {
	if len(gates) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(gates))
	pairs := make([]string, 0, len(names))
	var versions []string
	for _, name := range names {
		pairs = append(pairs, fmt.Sprintf("%s=%t", name, gates[name]))
		if gates[name] {
			for _, v := range gateAPIVersions[name] {
				versions = append(versions, v+"=true")
			}
		}
	}
	args := []string{"--feature-gates=" + strings.Join(pairs, ",")}
	if len(versions) > 0 {
		slices.Sort(versions)
		args = append(args, "--runtime-config="+strings.Join(slices.Compact(versions), ","))
	}
	return args
}

// waitReady polls /readyz until it answers ok, the server stops, or a minute passes.
func (a *apiServer) waitReady(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(a.loopback)
	if err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-a.done:
			return false, fmt.Errorf("kube-apiserver stopped while starting: %w", a.err)
		default:
		}
		var status int
		body, _ := client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&status).Raw()
		last = string(body)
		return status == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver not ready: %w (last /readyz: %s)", err, last)
	}
	return nil
}

// writeServiceAccountKey writes a fresh ECDSA P-256 key, used to sign and verify service-account tokens.
func writeServiceAccountKey(path string) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing service-account key: %w", err)
	}
	return path, nil
}

var errAlreadyStarted = errors.New("a local cluster already ran in this process (Kubernetes components keep process-global state); start one per process")
