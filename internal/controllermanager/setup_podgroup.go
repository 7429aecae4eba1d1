package controllermanager

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	"github.com/kubehtc/kubehtc/internal/gangcontroller"
)

func init() {
	Setups = append(Setups, Setup{
		Name:        "podgroup",
		AddToScheme: schedv1alpha1.AddToScheme,
		Register: func(mgr ctrl.Manager, _ Options) error {
			// Without the CRD (deploy/crds) the controller could never sync: say so and run the others.
			gk := schedv1alpha1.SchemeGroupVersion.WithKind("PodGroup").GroupKind()
			if _, err := mgr.GetRESTMapper().RESTMapping(gk, schedv1alpha1.SchemeGroupVersion.Version); meta.IsNoMatchError(err) {
				klog.Background().Error(err, "PodGroup CRD is not installed: the PodGroup status and gang-eviction controller does not run (install deploy/crds)")
				return nil
			}
			r := &gangcontroller.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder(gangcontroller.Name)}
			return r.SetupWithManager(mgr)
		},
	})
}
