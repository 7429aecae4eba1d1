package controllermanager

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gridcontroller "github.com/kubehtc/kubehtc/gridgateway/controller"
)

func init() {
	Setups = append(Setups, Setup{
		Name:        "gridjob",
		AddToScheme: kubehtcv1alpha1.AddToScheme,
		Register: func(mgr ctrl.Manager, opts Options) error {
			// Without the CRD (deploy/crds) the controller could never sync: say so and run the others.
			gk := kubehtcv1alpha1.GroupVersion.WithKind("GridJob").GroupKind()
			if _, err := mgr.GetRESTMapper().RESTMapping(gk, kubehtcv1alpha1.GroupVersion.Version); meta.IsNoMatchError(err) {
				klog.Background().Error(err, "GridJob CRD is not installed: the GridJob controller does not run (install deploy/crds)")
				return nil
			}
			r := &gridcontroller.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Options: opts.GridJob}
			return r.SetupWithManager(mgr)
		},
	})
}
