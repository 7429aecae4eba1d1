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
	opts := controllermanager.DefaultOptions()
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables)")
	flag.StringVar(&opts.HealthAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz (0 disables)")
	flag.IntVar(&opts.WebhookPort, "webhook-port", 9443, "port of the admission webhook server")
	flag.StringVar(&opts.WebhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory with tls.crt and tls.key for the webhook server")
	flag.BoolVar(&opts.LeaderElection, "leader-elect", true, "elect one active replica")
	flag.StringVar(&opts.Namespace, "namespace", "kubehtc-system", "namespace of the controller's own state (leader election)")
	flag.StringVar(&opts.GridJob.Pod.SchedulerName, "gridjob-scheduler-name", opts.GridJob.Pod.SchedulerName, "schedulerName of the Pods of GridJobs")
	flag.StringVar((*string)(&opts.GridJob.Pod.CVMFSMode), "gridjob-cvmfs-mode", string(opts.GridJob.Pod.CVMFSMode), "how GridJob Pods get CVMFS: inline CSI volumes (empty or \"ephemeral\") or per-repository PVCs (\"pvc\")")
	flag.StringVar(&opts.GridJob.Pod.SessionClaimName, "gridjob-session-claim", "", "PVC (in each VO namespace) of the ARC REST session store's volume: ARC jobs mount <namespace>/<name>/session of it at /session (empty: an emptyDir)")
	flag.StringVar(&opts.GridJob.Pod.CVMFSDriver, "cvmfs-csi-driver", "", "CSI driver of CVMFS volumes, for GridJob Pods and mount injection (default cvmfs.csi.cern.ch; kubehtc's is csi.kubehtc.io)")
	flag.StringVar(&opts.Mounts.EOSDriver, "eos-csi-driver", "", "CSI driver of EOS volumes injected by the webhook (default kubehtc's)")
	flag.BoolVar(&opts.Quota.Disabled, "disable-quota-controller", false, "do not run the quota controller (fair-share accounting; its settings are in the root Queue's spec.policy)")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	opts.Mounts.CVMFSDriver = opts.GridJob.Pod.CVMFSDriver
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
