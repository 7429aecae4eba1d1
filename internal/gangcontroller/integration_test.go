package gangcontroller_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	"github.com/kubehtc/kubehtc/deploy/crds"
	"github.com/kubehtc/kubehtc/internal/controllermanager"
	"github.com/kubehtc/kubehtc/internal/gangcontroller"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
)

// cluster is the one local cluster of this test binary. It runs kubehtc-controller's manager exactly as
// the local cluster of `kubehtc up` does (controllermanager.New with every Setup), after the CRDs.
var cluster *localcluster.Cluster

func TestMain(m *testing.M) {
	opts := localcluster.Options{
		NodePools: localcluster.NodePoolsConfig{Pools: []localcluster.NodePool{{Name: "cpu", Count: 3, CPU: "8", Memory: "32Gi", Zone: "zone-a"}}},
		Components: []localcluster.Component{
			{Name: "kubehtc CRDs", Start: func(ctx context.Context, c *localcluster.Cluster) error {
				return c.InstallCRDs(ctx, crds.All()...)
			}},
			{Name: "kubehtc-controller", Start: startControllerManager},
		},
	}
	os.Exit(clustertest.Main(m, opts, &cluster))
}

func startControllerManager(ctx context.Context, c *localcluster.Cluster) error {
	ctrl.SetLogger(klog.Background())
	mgr, err := controllermanager.New(c.JSONRESTConfig(), controllermanager.Options{MetricsAddr: "0", HealthAddr: "0"})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	c.Go(func() { errc <- mgr.Start(ctx) })
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return fmt.Errorf("kubehtc-controller caches did not sync: %w", <-errc)
	}
	return nil
}

// clients returns a typed client and a controller-runtime client that knows PodGroups.
func clients(t *testing.T) (kubernetes.Interface, client.WithWatch) {
	t.Helper()
	c := clustertest.Require(t, cluster)
	scheme, err := controllermanager.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := client.NewWithWatch(c.JSONRESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c.Client(), kc
}

func createPodGroup(t *testing.T, kc client.Client, ns, name string, minMember int32) {
	t.Helper()
	pg := &schedv1alpha1.PodGroup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: schedv1alpha1.PodGroupSpec{MinMember: minMember}}
	if err := kc.Create(context.Background(), pg); err != nil {
		t.Fatalf("creating PodGroup %s: %v", name, err)
	}
}

// createPod creates a pod of the default scheduler, a member of gang (if not empty), with the simulation
// annotations.
func createPod(t *testing.T, cs kubernetes.Interface, ns, name, gang string, annotations map[string]string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		}}}},
	}
	if gang != "" {
		p.Labels = map[string]string{schedv1alpha1.PodGroupLabel: gang}
	}
	p, err := cs.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	return p
}

// waitStatus polls PodGroup name until ok accepts its status, and returns that status.
func waitStatus(t *testing.T, kc client.Client, ns, name string, ok func(schedv1alpha1.PodGroupStatus) bool) schedv1alpha1.PodGroupStatus {
	t.Helper()
	var pg schedv1alpha1.PodGroup
	clustertest.Poll(t, 3*time.Minute, func(ctx context.Context) (bool, error) {
		if err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &pg); err != nil {
			return false, nil
		}
		return ok(pg.Status), nil
	})
	return pg.Status
}

// waitEvent polls until an Event with reason is recorded on PodGroup name, and returns its type and note.
func waitEvent(t *testing.T, cs kubernetes.Interface, ns, name, reason string) (string, string) {
	t.Helper()
	var typ, note string
	clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
		l, err := cs.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, e := range l.Items {
			if e.Regarding.Kind == "PodGroup" && e.Regarding.Name == name && e.Reason == reason {
				typ, note = e.Type, e.Note
				return true, nil
			}
		}
		return false, nil
	})
	return typ, note
}

var phaseRank = map[schedv1alpha1.PodGroupPhase]int{
	schedv1alpha1.PodGroupPending: 0, schedv1alpha1.PodGroupScheduling: 1, schedv1alpha1.PodGroupRunning: 2, schedv1alpha1.PodGroupFinished: 3,
}

// TestStatusFollowsMembers: a gang of 3 pods that run 20 s goes Pending → (Scheduling) → Running → Finished,
// never backwards, with the counts and a stable scheduleStartTime, and the phase changes as Events.
func TestStatusFollowsMembers(t *testing.T) {
	t.Parallel()
	cs, kc := clients(t)
	const ns, gang = "pg-status", "train"
	clustertest.Namespace(t, cs, ns)

	// Watch the PodGroup from its creation: every phase it passes through, in order.
	w, err := kc.Watch(context.Background(), &schedv1alpha1.PodGroupList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	createPodGroup(t, kc, ns, gang, 3)
	var created []*corev1.Pod
	for i := range 3 {
		created = append(created, createPod(t, cs, ns, fmt.Sprintf("%s-%d", gang, i), gang, map[string]string{localcluster.RuntimeAnnotation: "20s"}))
	}

	run := waitStatus(t, kc, ns, gang, func(s schedv1alpha1.PodGroupStatus) bool {
		return s.Phase == schedv1alpha1.PodGroupRunning && s.Running == 3
	})
	oldest := created[0].CreationTimestamp
	for _, p := range created {
		if p.CreationTimestamp.Before(&oldest) {
			oldest = p.CreationTimestamp
		}
	}
	if !run.ScheduleStartTime.Equal(&oldest) {
		t.Errorf("Running: scheduleStartTime %v, want the first member's creation %v", run.ScheduleStartTime, oldest)
	}
	done := waitStatus(t, kc, ns, gang, func(s schedv1alpha1.PodGroupStatus) bool { return s.Phase == schedv1alpha1.PodGroupFinished })
	want := schedv1alpha1.PodGroupStatus{Phase: schedv1alpha1.PodGroupFinished, Succeeded: 3, ScheduleStartTime: run.ScheduleStartTime}
	if done.Running != want.Running || done.Succeeded != want.Succeeded || done.Failed != want.Failed || !done.ScheduleStartTime.Equal(&want.ScheduleStartTime) {
		t.Errorf("Finished status %+v, want %+v", done, want)
	}

	var seen []schedv1alpha1.PodGroupPhase
	for len(seen) == 0 || seen[len(seen)-1] != schedv1alpha1.PodGroupFinished {
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			pg := ev.Object.(*schedv1alpha1.PodGroup)
			if p := pg.Status.Phase; p != "" && (len(seen) == 0 || seen[len(seen)-1] != p) {
				seen = append(seen, p)
			}
		case <-time.After(time.Minute):
			t.Fatalf("watch: phases %v, no Finished", seen)
		}
	}
	t.Logf("phases: %v", seen)
	for i := 1; i < len(seen); i++ {
		if phaseRank[seen[i]] <= phaseRank[seen[i-1]] {
			t.Errorf("phases %v: %s after %s", seen, seen[i], seen[i-1])
		}
	}
	if !slices.Contains(seen, schedv1alpha1.PodGroupRunning) {
		t.Errorf("phases %v: never Running", seen)
	}

	for _, reason := range []string{gangcontroller.ReasonRunning, gangcontroller.ReasonFinished} {
		if typ, note := waitEvent(t, cs, ns, gang, reason); typ != corev1.EventTypeNormal {
			t.Errorf("event %s: type %s (%q), want Normal", reason, typ, note)
		}
	}
	if got := gauge(t, schedv1alpha1.PodGroupFinished); got < 1 {
		t.Errorf("kubehtc_podgroups{phase=Finished} = %v, want at least this test's PodGroup", got)
	}
}

// TestFailedMember: one of 3 members of a minMember-3 gang fails, so the gang can no longer succeed.
func TestFailedMember(t *testing.T) {
	t.Parallel()
	cs, kc := clients(t)
	const ns, gang = "pg-failed", "mpi"
	clustertest.Namespace(t, cs, ns)
	createPodGroup(t, kc, ns, gang, 3)
	createPod(t, cs, ns, "mpi-0", gang, nil)
	createPod(t, cs, ns, "mpi-1", gang, nil)
	createPod(t, cs, ns, "mpi-2", gang, map[string]string{localcluster.ExitCodeAnnotation: "2"})

	st := waitStatus(t, kc, ns, gang, func(s schedv1alpha1.PodGroupStatus) bool {
		return s.Phase == schedv1alpha1.PodGroupFailed && s.Running == 2
	})
	if st.Failed != 1 || st.Succeeded != 0 || st.ScheduleStartTime.IsZero() {
		t.Errorf("Failed status %+v, want failed=1 succeeded=0 and a scheduleStartTime", st)
	}
	if typ, note := waitEvent(t, cs, ns, gang, gangcontroller.ReasonFailed); typ != corev1.EventTypeWarning {
		t.Errorf("event %s: type %s (%q), want Warning", gangcontroller.ReasonFailed, typ, note)
	}
}

// TestGangEvictionCompletion: the scheduler preempts one member of a running gang (condition, then delete);
// the rest of the gang gets the same condition and is deleted, other pods are untouched, and members bound
// after the preemption are a new attempt and stay.
func TestGangEvictionCompletion(t *testing.T) {
	t.Parallel()
	cs, kc := clients(t)
	ctx := context.Background()
	const ns, gang, other = "pg-evict", "ddp", "solo"
	clustertest.Namespace(t, cs, ns)
	createPodGroup(t, kc, ns, gang, 3)
	createPodGroup(t, kc, ns, other, 1)
	// The victim keeps a finalizer, as a pod in its grace period would linger: its mark must not evict
	// members bound later.
	const hold = "test.kubehtc.io/hold"
	victim := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ddp-0", Labels: map[string]string{schedv1alpha1.PodGroupLabel: gang}, Finalizers: []string{hold}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, victim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		if _, err := cs.CoreV1().Pods(ns).Patch(context.Background(), "ddp-0", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Errorf("removing the finalizer: %v", err)
		}
	})
	createPod(t, cs, ns, "ddp-1", gang, nil)
	createPod(t, cs, ns, "ddp-2", gang, nil)
	createPod(t, cs, ns, "solo-0", other, nil)
	createPod(t, cs, ns, "web", "", nil)
	waitStatus(t, kc, ns, gang, func(s schedv1alpha1.PodGroupStatus) bool {
		return s.Phase == schedv1alpha1.PodGroupRunning && s.Running == 3
	})
	waitStatus(t, kc, ns, other, func(s schedv1alpha1.PodGroupStatus) bool { return s.Phase == schedv1alpha1.PodGroupRunning })
	clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})

	l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// Preempt ddp-0 as kube-scheduler does: the DisruptionTarget condition through the status, then delete.
	p, err := cs.CoreV1().Pods(ns).Get(ctx, "ddp-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	marked := metav1.Now()
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: corev1.PodReasonPreemptionByScheduler, Message: "preempted by a higher-priority pod", LastTransitionTime: marked})
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "ddp-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// The final state of each deleted member carries the condition.
	gone := map[string]*corev1.Pod{}
	for len(gone) < 2 {
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Deleted {
				pod := ev.Object.(*corev1.Pod)
				gone[pod.Name] = pod
			}
		case <-time.After(time.Minute):
			t.Fatalf("deleted pods: %v, want ddp-1 and ddp-2", keys(gone))
		}
	}
	if diff := strings.Join(keys(gone), ","); diff != "ddp-1,ddp-2" {
		t.Errorf("deleted pods %s, want ddp-1,ddp-2", diff)
	}
	for name, pod := range gone {
		c := condition(pod, corev1.DisruptionTarget)
		wantMsg := "gang ddp: member ddp-0 was preempted"
		if c == nil || c.Status != corev1.ConditionTrue || c.Reason != corev1.PodReasonPreemptionByScheduler || c.Message != wantMsg {
			t.Errorf("%s was deleted with DisruptionTarget %+v, want True/%s/%q", name, c, corev1.PodReasonPreemptionByScheduler, wantMsg)
		}
	}
	typ, note := waitEvent(t, cs, ns, gang, gangcontroller.ReasonGangPreempted)
	if typ != corev1.EventTypeWarning || !strings.Contains(note, "ddp-0") || !strings.Contains(note, "ddp-1, ddp-2") {
		t.Errorf("event %s: %s %q, want a Warning naming ddp-0 and ddp-1, ddp-2", gangcontroller.ReasonGangPreempted, typ, note)
	}
	waitStatus(t, kc, ns, gang, func(s schedv1alpha1.PodGroupStatus) bool {
		return s.Phase == schedv1alpha1.PodGroupPending && s.Running == 0
	})

	for _, name := range []string{"solo-0", "web"} {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if p.DeletionTimestamp != nil || condition(p, corev1.DisruptionTarget) != nil || p.Status.Phase != corev1.PodRunning {
			t.Errorf("%s was touched: phase %s, deletion %v, DisruptionTarget %+v", name, p.Status.Phase, p.DeletionTimestamp, condition(p, corev1.DisruptionTarget))
		}
	}

	// A new attempt, bound in a later second than the mark while ddp-0 still lingers with it, stays.
	time.Sleep(time.Until(marked.Add(time.Second)))
	for i := 3; i < 6; i++ {
		createPod(t, cs, ns, fmt.Sprintf("ddp-%d", i), gang, nil)
	}
	// The controller evicts before it writes the status: a status counting 3 running members was computed by
	// a reconcile that saw them bound and left them alone.
	waitStatus(t, kc, ns, gang, func(s schedv1alpha1.PodGroupStatus) bool {
		return s.Phase == schedv1alpha1.PodGroupRunning && s.Running == 3
	})
	for i := 3; i < 6; i++ {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("ddp-%d", i), metav1.GetOptions{})
		if err != nil || p.DeletionTimestamp != nil {
			t.Errorf("new member ddp-%d was evicted (err %v)", i, err)
		}
	}
}

func condition(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func keys(m map[string]*corev1.Pod) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// gauge reads kubehtc_podgroups{phase} from controller-runtime's registry (what /metrics serves).
func gauge(t *testing.T, phase schedv1alpha1.PodGroupPhase) float64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kubehtc_podgroups" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "phase" && l.GetValue() == string(phase) {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("kubehtc_podgroups{phase=%q} is not exported", phase)
	return 0
}
