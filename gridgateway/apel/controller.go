package apel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// Names this controller sets on Pods and reads from Nodes and GridJobs (defined in apis/kubehtc/v1alpha1).
const (
	Finalizer           = kubehtcv1alpha1.APELFinalizer
	AccountedAnnotation = kubehtcv1alpha1.APELAccountedAnnotation
	CPUSourceAnnotation = kubehtcv1alpha1.APELCPUSourceAnnotation
	FQANAnnotation      = kubehtcv1alpha1.FQANAnnotation
	// BenchmarkLabel on a Node is its HEPscore23 per core; the record's ServiceLevel.
	BenchmarkLabel = kubehtcv1alpha1.HEPscore23Label
	notRun         = "not-run"
)

// Where a record's CpuDuration came from.
const (
	CPUMeasured  = "measured"
	CPUEstimated = "estimated"
)

var recordsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "kubehtc_apel_records_total",
	Help: "APEL job records staged, by infrastructure type (grid: GridJob, local: batch Pod) and CPU source.",
}, []string{"type", "cpu_source"})

var messagesTotal = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "kubehtc_apel_messages_total",
	Help: "APEL individual job messages put into the outgoing directory queue.",
})

func init() { metrics.Registry.MustRegister(recordsTotal, messagesTotal) }

// Options configure APEL accounting.
type Options struct {
	// Dir is the accounting directory (a persistent volume); empty turns accounting off. ssmsend's
	// path is <Dir>/outgoing.
	Dir string
	// Site is the GOCDB site name (APEL's Site).
	Site string
	// SubmitHost is the CE endpoint jobs are accounted under, e.g. ce.example.org:443/kubehtc.
	SubmitHost string
	// MachineName is APEL's MachineName; empty means the host of SubmitHost.
	MachineName string
	// DefaultBenchmark is the HEPscore23 per core of nodes without the label kubehtc.io/hepscore23; 0
	// leaves ServiceLevel out of their records.
	DefaultBenchmark float64
	// FlushInterval is how often staged records go out as one message; 0 means 5 minutes.
	FlushInterval time.Duration
	// BatchSize is the most records per message; 0 means 1000 (APEL's client sends 1000 per message).
	BatchSize int
}

// Validate names the first missing or wrong option.
func (o *Options) Validate() error {
	switch {
	case o.Dir == "":
		return nil
	case o.Site == "":
		return errors.New("apel: site is required (the GOCDB site name)")
	case o.SubmitHost == "":
		return errors.New("apel: submitHost is required (the CE endpoint)")
	case o.DefaultBenchmark < 0 || math.IsNaN(o.DefaultBenchmark):
		return fmt.Errorf("apel: defaultBenchmark %v must be ≥ 0", o.DefaultBenchmark)
	case o.BatchSize < 0:
		return fmt.Errorf("apel: batchSize %d must be ≥ 0", o.BatchSize)
	}
	return nil
}

// Accountant records every Pod of a queue that ran. Register it with SetupWithManager.
type Accountant struct {
	// Client reads Pods, Namespaces, Nodes and GridJobs from the manager's cache and patches Pods.
	Client client.Client
	// APIReader reads Pods from the API server itself, so that a stale cache never stages a record twice.
	APIReader client.Reader
	Options   Options
	// Usage gives measured CPU and memory of a Pod; nil means none is measured.
	Usage UsageSource
	spool *Spool
}

// UsageSource reports what a Pod really used.
type UsageSource interface {
	// PodUsage returns the CPU seconds and the peak memory (bytes) of the Pod's containers; ok is false
	// when nothing was measured.
	PodUsage(uid types.UID) (cpuSeconds float64, peakMemoryBytes int64, ok bool)
}

// SetupWithManager registers the reconciler (on Pods) and the flusher (a leader-only runnable).
func (a *Accountant) SetupWithManager(mgr ctrl.Manager) error {
	if err := a.Options.Validate(); err != nil {
		return err
	}
	sp, err := NewSpool(a.Options.Dir)
	if err != nil {
		return fmt.Errorf("apel: %w", err)
	}
	a.spool = sp
	if err := ctrl.NewControllerManagedBy(mgr).Named("apel").For(&corev1.Pod{}).Complete(a); err != nil {
		return err
	}
	return mgr.Add(&flusher{a: a})
}

// Spool is the accounting directory (after SetupWithManager).
func (a *Accountant) Spool() *Spool { return a.spool }

// queueOf returns the Pod's queue: a GridJob's Pod is in its site queue (kubehtc.io/site-queue, the
// GridJob's spec.queue overrides it in the record), any other Pod in its namespace's fair-share queue
// (kubehtc.io/queue on the Namespace).
func (a *Accountant) queueOf(ctx context.Context, pod *corev1.Pod) (string, error) {
	if ref := metav1.GetControllerOf(pod); ref != nil && ref.Kind == "GridJob" {
		if q := kubehtcv1alpha1.SiteQueueOf(pod.Labels); q != "" {
			return q, nil
		}
		return ref.Name, nil // a GridJob's Pod is a grid job whatever its labels
	}
	var ns corev1.Namespace
	if err := a.Client.Get(ctx, client.ObjectKey{Name: pod.Namespace}, &ns); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	return ns.Labels[kubehtcv1alpha1.QueueLabel], nil
}

// Reconcile holds a bound Pod of a queue with the finalizer and, once the Pod ended (or is being
// deleted), stages its record and marks it accounted.
func (a *Accountant) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := klog.FromContext(ctx)
	var pod corev1.Pod
	if err := a.Client.Get(ctx, req.NamespacedName, &pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pod.Annotations[AccountedAnnotation] != "" {
		return ctrl.Result{}, a.dropFinalizer(ctx, &pod)
	}
	queue, err := a.queueOf(ctx, &pod)
	if err != nil {
		return ctrl.Result{}, err
	}
	if queue == "" {
		return ctrl.Result{}, a.dropFinalizer(ctx, &pod)
	}
	ended := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if !ended && pod.DeletionTimestamp == nil {
		if pod.Spec.NodeName == "" || controllerutil.ContainsFinalizer(&pod, Finalizer) {
			return ctrl.Result{}, nil
		}
		patch := client.MergeFromWithOptions(pod.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(&pod, Finalizer)
		return ctrl.Result{}, client.IgnoreNotFound(a.Client.Patch(ctx, &pod, patch))
	}
	if !ended && !containersEnded(&pod) && pod.Spec.NodeName != "" {
		// Being deleted while running: the kubelet stops the containers within the grace period.
		if wait := time.Until(pod.DeletionTimestamp.Time); wait > 0 {
			return ctrl.Result{RequeueAfter: wait + time.Second}, nil
		}
	}
	// A stale cache must not stage a Pod whose record already went out: read it from the API server.
	var live corev1.Pod
	if err := a.APIReader.Get(ctx, req.NamespacedName, &live); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if live.UID != pod.UID || live.Annotations[AccountedAnnotation] != "" {
		return ctrl.Result{Requeue: true}, nil
	}
	rec, source, ran, err := a.record(ctx, &live, queue)
	if err != nil {
		return ctrl.Result{}, err
	}
	mark := notRun
	if ran {
		if err := a.spool.Stage(StageKey(&live), rec); err != nil {
			return ctrl.Result{}, fmt.Errorf("staging the record of pod %s: %w", klog.KObj(&live), err)
		}
		mark = strconv.FormatInt(rec.EndTime, 10)
		recordsTotal.WithLabelValues(rec.InfrastructureType, source).Inc()
		logger.V(2).Info("Staged APEL record", "pod", klog.KObj(&live), "wall", rec.WallDuration, "cpu", rec.CPUDuration, "cpuSource", source)
	}
	patch := client.MergeFromWithOptions(live.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if live.Annotations == nil {
		live.Annotations = map[string]string{}
	}
	live.Annotations[AccountedAnnotation] = mark
	if ran {
		live.Annotations[CPUSourceAnnotation] = source
	}
	controllerutil.RemoveFinalizer(&live, Finalizer)
	return ctrl.Result{}, client.IgnoreNotFound(a.Client.Patch(ctx, &live, patch))
}

func (a *Accountant) dropFinalizer(ctx context.Context, pod *corev1.Pod) error {
	if !controllerutil.ContainsFinalizer(pod, Finalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(pod.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(pod, Finalizer)
	return client.IgnoreNotFound(a.Client.Patch(ctx, pod, patch))
}

// StageKey names a Pod's staged record: <namespace>_<name>_<uid> (neither name holds an underscore).
func StageKey(pod *corev1.Pod) string {
	return pod.Namespace + "_" + pod.Name + "_" + string(pod.UID)
}

func parseStageKey(key string) (types.NamespacedName, types.UID, bool) {
	parts := strings.SplitN(key, "_", 3)
	if len(parts) != 3 {
		return types.NamespacedName{}, "", false
	}
	return types.NamespacedName{Namespace: parts[0], Name: parts[1]}, types.UID(parts[2]), true
}

func containersEnded(pod *corev1.Pod) bool {
	if len(pod.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Terminated == nil {
			return false
		}
	}
	return true
}

// runTimes returns when the Pod's containers started and ended; ran is false for a Pod that never ran.
func runTimes(pod *corev1.Pod) (start, end time.Time, ran bool) {
	for _, cs := range pod.Status.ContainerStatuses {
		var s, e time.Time
		switch {
		case cs.State.Terminated != nil:
			s, e = cs.State.Terminated.StartedAt.Time, cs.State.Terminated.FinishedAt.Time
		case cs.State.Running != nil:
			s = cs.State.Running.StartedAt.Time
		case cs.LastTerminationState.Terminated != nil:
			s, e = cs.LastTerminationState.Terminated.StartedAt.Time, cs.LastTerminationState.Terminated.FinishedAt.Time
		}
		if !s.IsZero() && (start.IsZero() || s.Before(start)) {
			start = s
		}
		if e.After(end) {
			end = e
		}
	}
	if start.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	if end.IsZero() || !containersEnded(pod) {
		// Killed while running and its end never reported: the deletion (end of the grace period).
		if pod.DeletionTimestamp != nil {
			end = pod.DeletionTimestamp.Time
		} else if end.IsZero() {
			end = time.Now()
		}
	}
	if end.Before(start) {
		end = start
	}
	return start, end, true
}

// record builds the APEL record of an ended Pod.
func (a *Accountant) record(ctx context.Context, pod *corev1.Pod, queue string) (Record, string, bool, error) {
	start, end, ran := runTimes(pod)
	if !ran {
		return Record{}, "", false, nil
	}
	o := a.Options
	machine := o.MachineName
	if machine == "" {
		machine, _, _ = strings.Cut(o.SubmitHost, ":")
		machine, _, _ = strings.Cut(machine, "/")
	}
	wall := int64(end.Sub(start).Round(time.Second) / time.Second)
	rec := Record{
		Site: o.Site, SubmitHost: o.SubmitHost, MachineName: machine, Queue: queue,
		LocalJobID:  pod.Namespace + "/" + pod.Name,
		LocalUserID: pod.Labels[kubehtcv1alpha1.UserLabel], VO: pod.Namespace,
		WallDuration: wall, NodeCount: 1, StartTime: start.Unix(), EndTime: end.Unix(),
		InfrastructureDescription: "APEL-KUBEHTC-KUBERNETES", InfrastructureType: "local",
		Processors: podCores(pod),
	}
	if rec.LocalUserID == "" {
		rec.LocalUserID = pod.Namespace
	}
	if gj, err := a.gridJob(ctx, pod); err != nil {
		return Record{}, "", false, err
	} else if gj != nil {
		rec.InfrastructureType = "grid"
		rec.LocalJobID = gj.Namespace + "." + gj.Name // the ARC job id
		rec.VO = gj.Spec.VO
		rec.Queue = gj.Spec.Queue
		rec.Processors = int64(gj.Spec.Description.Cores)
		rec.FQAN = gj.Annotations[FQANAnnotation]
		switch ow := gj.Spec.Owner; {
		case ow.DN != "":
			rec.GlobalUserName = ow.DN
		case ow.Subject != "":
			rec.GlobalUserName = ow.Issuer + "#" + ow.Subject
		}
	}
	source := CPUEstimated
	rec.CPUDuration = wall * rec.Processors
	if a.Usage != nil {
		if cpu, mem, ok := a.Usage.PodUsage(pod.UID); ok {
			source = CPUMeasured
			rec.CPUDuration = int64(math.Round(cpu))
			rec.MemoryReal = mem / 1024
		}
	}
	if bench, err := a.benchmark(ctx, pod.Spec.NodeName); err != nil {
		return Record{}, "", false, err
	} else if bench > 0 {
		rec.ServiceLevelType, rec.ServiceLevel = ServiceLevelHEPscore23, bench
	}
	return rec, source, true, rec.Validate()
}

// gridJob returns the GridJob owning the Pod, nil for a batch Pod (or a GridJob already gone).
func (a *Accountant) gridJob(ctx context.Context, pod *corev1.Pod) (*kubehtcv1alpha1.GridJob, error) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "GridJob" || !strings.HasPrefix(ref.APIVersion, kubehtcv1alpha1.GroupVersion.Group+"/") {
		return nil, nil
	}
	var gj kubehtcv1alpha1.GridJob
	if err := a.Client.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, &gj); apierrors.IsNotFound(err) {
		// Cleaned before its Pod: account what the Pod says, as a grid job of the owner's VO.
		return &kubehtcv1alpha1.GridJob{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: ref.Name},
			Spec: kubehtcv1alpha1.GridJobSpec{VO: pod.Namespace, Queue: kubehtcv1alpha1.SiteQueueOf(pod.Labels),
				Description: kubehtcv1alpha1.GridJobDescription{Cores: int32(podCores(pod))}}}, nil
	} else if err != nil {
		return nil, err
	}
	return &gj, nil
}

// benchmark is the node's HEPscore23 per core: its label, else the default.
func (a *Accountant) benchmark(ctx context.Context, node string) (float64, error) {
	if node == "" {
		return a.Options.DefaultBenchmark, nil
	}
	var n corev1.Node
	if err := a.Client.Get(ctx, client.ObjectKey{Name: node}, &n); apierrors.IsNotFound(err) {
		return a.Options.DefaultBenchmark, nil
	} else if err != nil {
		return 0, err
	}
	v, ok := n.Labels[BenchmarkLabel]
	if !ok {
		return a.Options.DefaultBenchmark, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		klog.FromContext(ctx).Error(err, "Node benchmark label is not a positive number; using the default", "node", node, "label", BenchmarkLabel, "value", v)
		return a.Options.DefaultBenchmark, nil
	}
	return f, nil
}

// podCores is the Pod's CPU in whole cores (its limits, else its requests; at least 1).
func podCores(pod *corev1.Pod) int64 {
	var milli int64
	for _, c := range pod.Spec.Containers {
		q, ok := c.Resources.Limits[corev1.ResourceCPU]
		if !ok {
			q = c.Resources.Requests[corev1.ResourceCPU]
		}
		milli += q.MilliValue()
	}
	return max(1, (milli+999)/1000)
}

// flusher sends staged records of accounted Pods out in batches; it runs on the leader only.
type flusher struct{ a *Accountant }

func (f *flusher) NeedLeaderElection() bool { return true }

func (f *flusher) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithName("apel")
	ctx = klog.NewContext(ctx, logger)
	if err := f.a.spool.Recover(); err != nil {
		logger.Error(err, "Finishing the batches of an earlier run")
	}
	every := f.a.Options.FlushInterval
	if every <= 0 {
		every = 5 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := f.a.Flush(ctx); err != nil {
			logger.Error(err, "Flushing APEL records")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Flush sends the staged records of Pods marked accounted (or gone) and returns how many went out.
func (a *Accountant) Flush(ctx context.Context) (int, error) {
	keys, err := a.spool.Staged()
	if err != nil {
		return 0, err
	}
	var ready []string
	for _, k := range keys {
		nn, uid, ok := parseStageKey(k)
		if !ok {
			continue
		}
		var pod corev1.Pod
		err := a.APIReader.Get(ctx, nn, &pod)
		switch {
		case apierrors.IsNotFound(err):
			ready = append(ready, k) // gone: only possible after the finalizer was dropped, or forced
		case err != nil:
			return 0, err
		case pod.UID != uid || pod.Annotations[AccountedAnnotation] != "":
			ready = append(ready, k)
		}
	}
	size := a.Options.BatchSize
	if size <= 0 {
		size = 1000
	}
	sent := 0
	for len(ready) > 0 {
		n := min(size, len(ready))
		elem, err := a.spool.Commit(ready[:n])
		if err != nil {
			return sent, err
		}
		messagesTotal.Inc()
		klog.FromContext(ctx).V(1).Info("APEL message queued", "element", elem, "records", n)
		sent += n
		ready = ready[n:]
	}
	return sent, nil
}
