// Command kubehtc-controller runs every kubehtc controller and admission webhook in one manager (see
// internal/controllermanager).
package main

import (
	"flag"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/kubehtc/kubehtc/internal/controllermanager"
)

func main() {
	var opts controllermanager.Options
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables)")
	flag.StringVar(&opts.HealthAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz (0 disables)")
	flag.IntVar(&opts.WebhookPort, "webhook-port", 9443, "port of the admission webhook server")
	flag.StringVar(&opts.WebhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory with tls.crt and tls.key for the webhook server")
	flag.BoolVar(&opts.LeaderElection, "leader-elect", true, "elect one active replica")
	flag.StringVar(&opts.Namespace, "namespace", "kubehtc-system", "namespace of the controller's own state (leader election)")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("kubehtc-controller")

	mgr, err := controllermanager.New(ctrl.GetConfigOrDie(), opts)
	if err != nil {
		log.Error(err, "setting up")
		os.Exit(1)
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "running")
		os.Exit(1)
	}
}
