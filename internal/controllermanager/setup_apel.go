package controllermanager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kubehtc/kubehtc/gridgateway/apel"
)

func init() {
	Setups = append(Setups, Setup{
		Name: "apel",
		Register: func(mgr ctrl.Manager, opts Options) error {
			if opts.APEL.Dir == "" {
				return nil // accounting is off
			}
			a := &apel.Accountant{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Options: opts.APEL}
			if opts.APELUsageFromKubelet {
				a.Usage = apel.NewKubeletUsage(mgr.GetConfig(), mgr.GetClient())
				if err := mgr.Add(a.Usage.(*apel.KubeletUsage)); err != nil {
					return err
				}
			}
			return a.SetupWithManager(mgr)
		},
	})
}
