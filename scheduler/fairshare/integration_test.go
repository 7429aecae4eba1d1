package fairshare_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/deploy/crds"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/internal/localcluster/quotacomponent"
	"github.com/kubehtc/kubehtc/scheduler"
	"github.com/kubehtc/kubehtc/scheduler/fairshare"
)

// The cluster of these tests: 4 nodes of 10 cores, 40 cores in all, and the quota controller; the root Queue
// has a 15 s half-life and a 1 s accounting interval, and charges cores only, so that each scenario takes a
// few minutes.
const (
	nodes    = 4
	nodeCPU  = 10
	halfLife = 15 * time.Second
)

var (
	cluster *localcluster.Cluster
	scheme  = runtime.NewScheme()
	kc      client.Client
)

func TestMain(m *testing.M) {
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := kubehtcv1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	ctrl.SetLogger(klog.Background())
	os.Exit(clustertest.Main(m, localcluster.Options{
		NodePools: localcluster.NodePoolsConfig{Pools: []localcluster.NodePool{{Name: "n", Count: nodes, CPU: fmt.Sprint(nodeCPU), Memory: "64Gi", Zone: "zone-a"}}},
		// The root Queue (the test's policy) exists before the quota controller first accounts.
		Components: []localcluster.Component{{Name: "root queue", Start: startQuota}, quotacomponent.Component()},
	}, &cluster))
}

func startQuota(ctx context.Context, c *localcluster.Cluster) error {
	if err := c.InstallCRDs(ctx, crds.All()...); err != nil {
		return err
	}
	var err error
	if kc, err = client.New(c.JSONRESTConfig(), client.Options{Scheme: scheme}); err != nil {
		return err
	}
	root := &kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: kubehtcv1alpha1.RootQueueName}, Spec: kubehtcv1alpha1.QueueSpec{
		Policy: &kubehtcv1alpha1.FairSharePolicy{
			HalfLife:           metav1.Duration{Duration: halfLife},
			AccountingInterval: metav1.Duration{Duration: time.Second},
			CoreEquivalents:    v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")},
		}}}
	return kc.Create(ctx, root)
}

// queues creates VO queues under root, deleted when the test ends.
func queues(t *testing.T, weights map[string]int32) {
	t.Helper()
	for name, w := range weights {
		q := &kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: kubehtcv1alpha1.QueueSpec{Parent: "root", Weight: w}}
		if err := kc.Create(context.Background(), q); err != nil {
			t.Fatalf("creating queue %s: %v", name, err)
		}
		t.Cleanup(func() { _ = kc.Delete(context.Background(), q) })
	}
}

// namespace creates namespace ns in queue (none if ""), deleted with its pods when the test ends.
func namespace(t *testing.T, ns, queue string) {
	t.Helper()
	clustertest.Namespace(t, cluster.Client(), ns)
	if queue == "" {
		return
	}
	n := &v1.Namespace{}
	if err := kc.Get(context.Background(), client.ObjectKey{Name: ns}, n); err != nil {
		t.Fatal(err)
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels[kubehtcv1alpha1.QueueLabel] = queue
	if err := kc.Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the scheduler's namespace informer sees the label
}

// submit creates n 1-core pods on the kubehtc profile; runtime 0 runs until deleted.
func submit(t *testing.T, ns, prefix, user string, n int, runtime time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &v1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%04d", prefix, i), Labels: map[string]string{}, Annotations: map[string]string{}},
				Spec: v1.PodSpec{
					SchedulerName:                 scheduler.ProfileName,
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []v1.Container{{Name: "c", Image: "busybox", Resources: v1.ResourceRequirements{
						Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), v1.ResourceMemory: resource.MustParse("1Gi")}}}},
				},
			}
			if user != "" {
				p.Labels[kubehtcv1alpha1.UserLabel] = user
			}
			if runtime > 0 {
				p.Annotations[localcluster.RuntimeAnnotation] = runtime.String()
			}
			if _, err := cluster.Client().CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}()
		if i%32 == 31 {
			wg.Wait()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("creating pods: %v", err)
	}
}

// running counts running pods per key (namespace, or namespace/user).
func running(t *testing.T, byUser bool, nss ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ns := range nss {
		l, err := cluster.Client().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "status.phase=Running"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range l.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			k := ns
			if byUser {
				k = ns + "/" + p.Labels[kubehtcv1alpha1.UserLabel]
			}
			out[k]++
		}
	}
	return out
}

// deliver samples running pods every second for d and returns each key's fraction of the core-seconds.
func deliver(t *testing.T, d time.Duration, byUser bool, nss ...string) map[string]float64 {
	t.Helper()
	sum := map[string]float64{}
	total := 0.0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Second) {
		for k, n := range running(t, byUser, nss...) {
			sum[k] += float64(n)
			total += float64(n)
		}
	}
	for k := range sum {
		sum[k] /= total
	}
	return sum
}

// TestSharesDelivered: three VOs with shares 50/30/20 and saturating backlogs of 1-core, 8 s pods. After a
// warm-up, the core-seconds each VO gets are within 5 percentage points of its share.
func TestSharesDelivered(t *testing.T) {
	clustertest.Require(t, cluster)
	queues(t, map[string]int32{"sd-a": 50, "sd-b": 30, "sd-c": 20})
	share := map[string]float64{"sd-a": 0.5, "sd-b": 0.3, "sd-c": 0.2}
	// 40 cores for 30 s warm-up + 90 s = 600 pods of 8 s; a backlog of 1.3× each VO's part keeps all saturated.
	for vo, s := range share {
		namespace(t, vo, vo)
		submit(t, vo, "job", "", int(1.3*600*s)+20, 8*time.Second)
	}
	time.Sleep(30 * time.Second)
	got := deliver(t, 90*time.Second, false, "sd-a", "sd-b", "sd-c")
	maxDev := 0.0
	for vo, s := range share {
		dev := math.Abs(got[vo] - s)
		maxDev = max(maxDev, dev)
		if dev > 0.05 {
			t.Errorf("%s delivered %.1f%% of the core-seconds, share %.0f%% (more than 5 points off)", vo, 100*got[vo], 100*s)
		}
	}
	t.Logf("delivered: a %.1f%%, b %.1f%%, c %.1f%%; max deviation %.1f points", 100*got["sd-a"], 100*got["sd-b"], 100*got["sd-c"], 100*maxDev)
}

// TestReclaim: a VO idle while another borrows its share, then returning, gets its target back by reclaim:
// exactly what it is owed is preempted, each victim once, and pods outside any queue (web) are never touched
// and reduce the capacity the queues divide.
func TestReclaim(t *testing.T) {
	clustertest.Require(t, cluster)
	queues(t, map[string]int32{"rc-x": 1, "rc-y": 1})
	namespace(t, "rc-x", "rc-x")
	namespace(t, "rc-y", "rc-y")
	namespace(t, "rc-web", "")
	// Web: 10 cores (no queue). The queues divide 40 − 10 = 30: targets 15 and 15.
	submit(t, "rc-web", "web", "", 10, 0)
	clustertest.Poll(t, time.Minute, func(context.Context) (bool, error) { return running(t, false, "rc-web")["rc-web"] == 10, nil })
	// y borrows x's idle share: 30 of 30.
	submit(t, "rc-y", "y", "", 40, 0)
	clustertest.Poll(t, time.Minute, func(context.Context) (bool, error) { return running(t, false, "rc-y")["rc-y"] == 30, nil })
	// x returns with more than its target.
	submit(t, "rc-x", "x", "", 20, 0)
	clustertest.Poll(t, 2*time.Minute, func(context.Context) (bool, error) { return running(t, false, "rc-x")["rc-x"] == 15, nil })
	time.Sleep(5 * time.Second) // nothing more should move
	got := running(t, false, "rc-x", "rc-y", "rc-web")
	if want := map[string]int{"rc-x": 15, "rc-y": 15, "rc-web": 10}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("running pods %v, want %v (targets 15/15 of the 30 cores web leaves)", got, want)
	}
	yPods, err := cluster.Client().CoreV1().Pods("rc-y").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if preempted := 40 - len(yPods.Items); preempted != 15 {
		t.Errorf("%d of y's pods preempted, want 15 (x's target)", preempted)
	}
	events, err := cluster.Client().CoreV1().Events("").List(context.Background(), metav1.ListOptions{FieldSelector: "reason=Preempted"})
	if err != nil {
		t.Fatal(err)
	}
	victims := map[string]int{}
	for _, e := range events.Items {
		victims[e.InvolvedObject.Namespace+"/"+e.InvolvedObject.Name]++
	}
	for v, n := range victims {
		if n > 1 {
			t.Errorf("%s preempted %d times", v, n)
		}
		if v[:5] == "rc-we" {
			t.Errorf("web pod %s preempted", v)
		}
	}
	// x stays at its target: its 5 other pods wait, with the reason.
	x, err := cluster.Client().CoreV1().Pods("rc-x").List(context.Background(), metav1.ListOptions{FieldSelector: "status.phase=Pending"})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Items) != 5 {
		t.Errorf("%d of x's pods pending, want 5", len(x.Items))
	}
	for _, p := range x.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodScheduled && !strings.Contains(c.Message, fairshare.ReasonNoReclaim) {
				t.Errorf("pending pod %s: %q does not say that reclaim stops at the target", p.Name, c.Message)
			}
		}
	}
	t.Logf("reclaim: %d victims, running %v; a pending pod of x says: %s", len(victims), got, podScheduledMessage(x.Items))
}

func podScheduledMessage(pods []v1.Pod) string {
	for _, p := range pods {
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodScheduled {
				return c.Message
			}
		}
	}
	return ""
}

// TestDecayRanking: a VO that used a lot, then nothing for several half-lives, ranks ahead of one that kept
// running.
func TestDecayRanking(t *testing.T) {
	clustertest.Require(t, cluster)
	queues(t, map[string]int32{"dr-past": 1, "dr-steady": 1})
	namespace(t, "dr-past", "dr-past")
	namespace(t, "dr-steady", "dr-steady")
	submit(t, "dr-steady", "s", "", 8, 0)
	submit(t, "dr-past", "p", "", 30, 20*time.Second)
	rank := func(name string) (int32, float64) {
		q := &kubehtcv1alpha1.Queue{}
		if err := kc.Get(context.Background(), client.ObjectKey{Name: name}, q); err != nil {
			t.Fatal(err)
		}
		d := math.NaN()
		if q.Status.DecayedUsage != nil {
			d = q.Status.DecayedUsage.AsApproximateFloat64()
		}
		return q.Status.Rank, d
	}
	// While past runs 30 cores against steady's 8, steady ranks first.
	clustertest.Poll(t, time.Minute, func(context.Context) (bool, error) {
		p, pd := rank("dr-past")
		s, sd := rank("dr-steady")
		return pd > sd && p > s, nil
	})
	// past stops after 20 s; 4 half-lives later its decayed usage is below 1/16 of its peak and steady's 8.
	clustertest.Poll(t, 3*time.Minute, func(context.Context) (bool, error) {
		return running(t, false, "dr-past")["dr-past"] == 0, nil
	})
	time.Sleep(4 * halfLife)
	p, pd := rank("dr-past")
	s, sd := rank("dr-steady")
	if !(p < s) {
		t.Errorf("after 4 half-lives idle: past rank %d (decayed %.2f), steady rank %d (decayed %.2f); want past first", p, pd, s, sd)
	}
	t.Logf("past rank %d decayed %.2f; steady rank %d decayed %.2f", p, pd, s, sd)
}

// TestUsersEqual: inside one VO, two users with equal shares get equal throughput even though one submitted
// all its pods first.
func TestUsersEqual(t *testing.T) {
	clustertest.Require(t, cluster)
	queues(t, map[string]int32{"ue-vo": 1})
	namespace(t, "ue-vo", "ue-vo")
	// 40 cores, 6 s pods: 30 s warm-up + 60 s ≈ 600 pods in all; 400 each keeps both saturated.
	submit(t, "ue-vo", "alice", "alice", 400, 6*time.Second)
	submit(t, "ue-vo", "bob", "bob", 400, 6*time.Second)
	time.Sleep(30 * time.Second)
	got := deliver(t, 60*time.Second, true, "ue-vo")
	if d := math.Abs(got["ue-vo/alice"] - 0.5); d > 0.05 {
		t.Errorf("alice %.1f%%, bob %.1f%% of the core-seconds; want 50%% each within 5 points", 100*got["ue-vo/alice"], 100*got["ue-vo/bob"])
	}
	t.Logf("alice %.1f%%, bob %.1f%%", 100*got["ue-vo/alice"], 100*got["ue-vo/bob"])
}

// TestLimit: a queue's limit holds whatever is free; the pods over it wait with a reason naming the queue.
func TestLimit(t *testing.T) {
	clustertest.Require(t, cluster)
	q := &kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: "lm-vo"}, Spec: kubehtcv1alpha1.QueueSpec{
		Parent: "root", Weight: 1, Limit: v1.ResourceList{v1.ResourceCPU: resource.MustParse("3")}}}
	if err := kc.Create(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kc.Delete(context.Background(), q) })
	namespace(t, "lm-vo", "lm-vo")
	submit(t, "lm-vo", "p", "", 5, 0)
	clustertest.Poll(t, time.Minute, func(context.Context) (bool, error) {
		l, err := cluster.Client().CoreV1().Pods("lm-vo").List(context.Background(), metav1.ListOptions{FieldSelector: "status.phase=Pending"})
		if err != nil || len(l.Items) != 2 {
			return false, nil
		}
		return strings.Contains(podScheduledMessage(l.Items), fairshare.ReasonLimit), nil
	})
	time.Sleep(3 * time.Second)
	if got := running(t, false, "lm-vo")["lm-vo"]; got != 3 {
		t.Errorf("%d pods running under a 3-core limit with 40 cores free", got)
	}
	l, err := cluster.Client().CoreV1().Pods("lm-vo").List(context.Background(), metav1.ListOptions{FieldSelector: "status.phase=Pending"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pending pod: %s", podScheduledMessage(l.Items))
}
