package controllermanager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	csiwebhook "github.com/kubehtc/kubehtc/csi/webhook"
)

func init() {
	Setups = append(Setups, Setup{
		Name: "csi-mount-injection",
		Register: func(mgr ctrl.Manager, opts Options) error {
			// Without a certificate directory no webhook server is configured (the local cluster's
			// default): registering would start one on :9443 without certificates.
			if opts.WebhookCertDir == "" {
				return nil
			}
			csiwebhook.Register(mgr, opts.Mounts)
			return nil
		},
	})
}
