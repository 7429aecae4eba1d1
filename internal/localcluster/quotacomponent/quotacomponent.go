// Package quotacomponent runs kubehtc's quota controller (quota/controller) as a component of the local
// cluster: `kubehtc sim --mode cluster` and the integration tests that need accounted Queue status (fair
// share, the demo) start it this way. It lives beside internal/localcluster rather than in quota/controller so
// that the controller's binary does not link the embedded control plane.
package quotacomponent

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	quotacontroller "github.com/kubehtc/kubehtc/quota/controller"
)

// Component is the quota controller alone in its manager (no webhooks, no other controllers), without leader
// election or metrics port. It accounts every Queue each accounting interval, writing the decayed usage the
// FairShare and QueueOrder plugins rank on. The Queue CRD must be installed before it starts. Start returns
// once the manager's caches have synced.
func Component() localcluster.Component {
	return localcluster.Component{
		Name: "kubehtc quota controller",
		Start: func(ctx context.Context, c *localcluster.Cluster) error {
			scheme := runtime.NewScheme()
			for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, kubehtcv1alpha1.AddToScheme} {
				if err := add(scheme); err != nil {
					return fmt.Errorf("quota controller scheme: %w", err)
				}
			}
			ctrl.SetLogger(klog.Background())
			mgr, err := ctrl.NewManager(c.JSONRESTConfig(), ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
			if err != nil {
				return fmt.Errorf("quota controller manager: %w", err)
			}
			if err := (&quotacontroller.Accountant{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
				return fmt.Errorf("quota controller: %w", err)
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
