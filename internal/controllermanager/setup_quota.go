package controllermanager

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	quotacontroller "github.com/kubehtc/kubehtc/quota/controller"
)

func init() {
	Setups = append(Setups, Setup{
		Name:        "quota",
		AddToScheme: kubehtcv1alpha1.AddToScheme,
		Register: func(mgr ctrl.Manager, opts Options) error {
			if opts.Quota.Disabled {
				return nil
			}
			// Without the CRD (deploy/crds) there is nothing to account: say so and run the others.
			gk := kubehtcv1alpha1.GroupVersion.WithKind("Queue").GroupKind()
			if _, err := mgr.GetRESTMapper().RESTMapping(gk, kubehtcv1alpha1.GroupVersion.Version); meta.IsNoMatchError(err) {
				klog.Background().Error(err, "Queue CRD is not installed: the quota controller does not run (install deploy/crds)")
				return nil
			}
			return (&quotacontroller.Accountant{Client: mgr.GetClient()}).SetupWithManager(mgr)
		},
	})
}
