// Package controllermanager builds kubehtc-controller: one controller-runtime manager that runs every
// kubehtc controller and webhook (GridJob, quota accounting, PodGroup status, mount injection). The binary
// (cmd/kubehtc-controller) and the local cluster run exactly this, so what is tested is what ships.
//
// A controller joins by adding its setup function to Setups.
package controllermanager

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/kubehtc/kubehtc/csi/inject"
	"github.com/kubehtc/kubehtc/gridgateway/apel"
	gridcontroller "github.com/kubehtc/kubehtc/gridgateway/controller"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
	quotacontroller "github.com/kubehtc/kubehtc/quota/controller"
)

// Setup registers one controller or webhook with the manager. Options carry site configuration.
type Setup struct {
	// Name of the controller, for errors and logs.
	Name string
	// AddToScheme adds the API types the controller needs; may be nil.
	AddToScheme func(*runtime.Scheme) error
	// Register adds the controller or webhook to mgr.
	Register func(mgr ctrl.Manager, opts Options) error
}

// Setups are every kubehtc controller and webhook, in registration order.
var Setups []Setup

// Options configure the manager.
type Options struct {
	// MetricsAddr serves Prometheus metrics ("0" disables).
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz ("0" disables).
	HealthAddr string
	// WebhookHost and WebhookPort are where admission webhooks listen; WebhookCertDir holds tls.crt/tls.key.
	WebhookHost    string
	WebhookPort    int
	WebhookCertDir string
	// LeaderElection makes replicas elect one active manager.
	LeaderElection bool
	// Namespace for leader election and other namespaced state of the controller itself.
	Namespace string
	// GridJob configures the GridJob controller (Pods' scheduler, CVMFS volumes, simulation).
	GridJob gridcontroller.Options
	// Mounts configures the CVMFS/EOS mount-injection webhook (which CSI drivers it targets).
	Mounts inject.Options
	// Quota configures the quota (fair-share accounting) controller. Its policy (half-life, interval,
	// core-equivalents) is not here but in the root Queue, which the scheduler reads too.
	Quota quotacontroller.Options
	// APEL configures APEL accounting of finished Pods of queues (off without a directory).
	APEL apel.Options
	// APELUsageFromKubelet samples Pods' CPU and memory from the kubelets' summary API, so that records
	// carry measured CPU time (otherwise wall time × cores, marked estimated).
	APELUsageFromKubelet bool
}

// DefaultOptions are the options of a production kubehtc-controller: GridJob Pods on the kubehtc scheduler
// profile, CVMFS as inline volumes of CERN's cvmfs-csi driver (inject's default drivers).
func DefaultOptions() Options {
	return Options{GridJob: gridcontroller.Options{Pod: translate.PodOptions{SchedulerName: "kubehtc"}}}
}

// Scheme returns the scheme with the built-in types and every Setup's types.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	for _, st := range Setups {
		if st.AddToScheme == nil {
			continue
		}
		if err := st.AddToScheme(s); err != nil {
			return nil, fmt.Errorf("%s: adding types: %w", st.Name, err)
		}
	}
	return s, nil
}

// New builds the manager with every Setup registered. Start it with mgr.Start(ctx).
func New(cfg *rest.Config, opts Options) (ctrl.Manager, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		opts.Namespace = "kubehtc-system"
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:  opts.HealthAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        "kubehtc-controller",
		LeaderElectionNamespace: opts.Namespace,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host:    opts.WebhookHost,
			Port:    opts.WebhookPort,
			CertDir: opts.WebhookCertDir,
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if opts.HealthAddr != "0" && opts.HealthAddr != "" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
	}
	for _, st := range Setups {
		if err := st.Register(mgr, opts); err != nil {
			return nil, fmt.Errorf("%s: %w", st.Name, err)
		}
	}
	return mgr, nil
}
