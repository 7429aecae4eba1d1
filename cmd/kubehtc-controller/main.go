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
	flag.StringVar(&opts.APEL.Dir, "apel-dir", "", "APEL accounting directory (a persistent volume; ssmsend's path is <dir>/outgoing); empty: no accounting")
	flag.StringVar(&opts.APEL.Site, "apel-site", "", "GOCDB site name of APEL records")
	flag.StringVar(&opts.APEL.SubmitHost, "apel-submit-host", "", "CE endpoint APEL records name as SubmitHost, e.g. ce.example.org:443/kubehtc")
	flag.Float64Var(&opts.APEL.DefaultBenchmark, "apel-default-hepscore23", 0, "HEPscore23 per core of nodes without the label kubehtc.io/hepscore23 (0: no ServiceLevel)")
	flag.DurationVar(&opts.APEL.FlushInterval, "apel-flush-interval", 0, "how often staged APEL records go out as a message (default 5m)")
	flag.BoolVar(&opts.APELUsageFromKubelet, "apel-kubelet-usage", false, "sample Pods' CPU and memory from the kubelet summary API (nodes/proxy get) for measured CPU time")
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
