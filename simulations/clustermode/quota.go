package clustermode

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	quotacontroller "github.com/kubehtc/kubehtc/quota/controller"
)

// QuotaController is the local-cluster component cluster mode needs for fair share: kubehtc's quota
// controller (quota/controller), which accounts the run's Queues every accounting interval and writes the
// decayed usage the FairShare and QueueOrder plugins rank on. It runs alone in its manager (no webhooks, no
// GridJob controller), without leader election or metrics port; the CRDs are installed by the local cluster.
func QuotaController() localcluster.Component {
	return localcluster.Component{
		Name: "kubehtc quota controller",
		Start: func(ctx context.Context, c *localcluster.Cluster) error {
			ctrl.SetLogger(klog.Background())
			mgr, err := ctrl.NewManager(c.JSONRESTConfig(), ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
			if err != nil {
				return fmt.Errorf("quota controller manager: %w", err)
			}
			if err := (&quotacontroller.Accountant{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
				return err
			}
			errc := make(chan error, 1)
			c.Go(func() { errc <- mgr.Start(ctx) })
			if !mgr.GetCache().WaitForCacheSync(ctx) {
				return fmt.Errorf("quota controller caches did not sync: %w", <-errc)
			}
			return nil
		},
	}
}
