package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kubehtc/kubehtc/deploy/crds"
	localgateway "github.com/kubehtc/kubehtc/gridgateway/local"
	"github.com/kubehtc/kubehtc/internal/controllermanager"
	"github.com/kubehtc/kubehtc/internal/localcluster"
)

// localComponents are the kubehtc parts `up` and `demo` run inside the local cluster.
func localComponents() []localcluster.Component {
	opts := controllermanager.DefaultOptions()
	// Simulated pilots run for the time their description asks (the local cluster's runtime annotation).
	opts.GridJob.Pod.Simulation = true
	// APEL records of every finished pod of a queue, into <cluster dir>/apel (see docs/gateway.md).
	opts.APEL.Site, opts.APEL.SubmitHost, opts.APEL.FlushInterval = "KUBEHTC-LOCAL", "localhost:443/kubehtc", 30*time.Second
	return []localcluster.Component{crdComponent(), controllerComponent(opts), gatewayComponent()}
}

// crdComponent installs kubehtc's CRDs (deploy/crds) before the controllers start.
func crdComponent() localcluster.Component {
	return localcluster.Component{
		Name: "kubehtc CRDs",
		Start: func(ctx context.Context, c *localcluster.Cluster) error {
			return c.InstallCRDs(ctx, crds.All()...)
		},
	}
}

// gatewayComponent runs the grid gateway on a loopback port with a generated token issuer; its address
// and the VOs' tokens are in the Secret kubehtc-system/kubehtc-gateway-local (see gridgateway/local).
func gatewayComponent() localcluster.Component {
	return localcluster.Component{
		Name: "kubehtc-gateway",
		Start: func(ctx context.Context, c *localcluster.Cluster) error {
			_, err := localgateway.Start(ctx, c.RESTConfig(), c.Go)
			return err
		},
	}
}

// controllerComponent runs kubehtc-controller's manager in the local cluster's process: no leader election,
// no metrics or health ports, logs into the cluster log.
func controllerComponent(opts controllermanager.Options) localcluster.Component {
	return localcluster.Component{
		Name: "kubehtc-controller",
		Start: func(ctx context.Context, c *localcluster.Cluster) error {
			ctrl.SetLogger(klog.Background())
			if opts.MetricsAddr == "" {
				opts.MetricsAddr = "0"
			}
			if opts.HealthAddr == "" {
				opts.HealthAddr = "0"
			}
			if opts.APEL.Site != "" && opts.APEL.Dir == "" && c.Dir != "" {
				opts.APEL.Dir = filepath.Join(c.Dir, "apel")
			}
			mgr, err := controllermanager.New(c.JSONRESTConfig(), opts)
			if err != nil {
				return err
			}
			errc := make(chan error, 1)
			c.Go(func() { errc <- mgr.Start(ctx) })
			if !mgr.GetCache().WaitForCacheSync(ctx) {
				return fmt.Errorf("kubehtc-controller caches did not sync: %w", <-errc)
			}
			return nil
		},
	}
}
