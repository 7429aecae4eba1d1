package controller_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/deploy/crds"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/quota/controller"
	"github.com/kubehtc/kubehtc/quota/fairshare"
)

var (
	cluster *localcluster.Cluster
	scheme  = runtime.NewScheme()
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
		NodePools: localcluster.NodePoolsConfig{Pools: []localcluster.NodePool{{Name: "n", Count: 4, CPU: "16", Memory: "64Gi", Zone: "zone-a"}}},
		Components: []localcluster.Component{{Name: "crds", Start: func(ctx context.Context, c *localcluster.Cluster) error {
			return c.InstallCRDs(ctx, crds.All()...)
		}}},
	}, &cluster))
}

// startController runs the quota controller in its own manager until the returned stop is called.
func startController(t *testing.T) (stop func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(cluster.JSONRESTConfig(), ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&controller.Accountant{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
}

func kubeClient(t *testing.T) client.Client {
	t.Helper()
	kc, err := client.New(cluster.JSONRESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

func createQueues(t *testing.T, kc client.Client, qs ...*kubehtcv1alpha1.Queue) {
	t.Helper()
	ctx := context.Background()
	for _, q := range qs {
		if err := kc.Create(ctx, q); err != nil {
			t.Fatalf("creating queue %s: %v", q.Name, err)
		}
		t.Cleanup(func() { _ = kc.Delete(context.Background(), q) })
	}
}

func sleeper(ns, name, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("1Gi")}}}},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
		},
	}
}

func labelledNamespace(t *testing.T, kc client.Client, ns, queue string) {
	t.Helper()
	clustertest.Namespace(t, cluster.Client(), ns)
	if queue == "" {
		return
	}
	n := &corev1.Namespace{}
	if err := kc.Get(context.Background(), client.ObjectKey{Name: ns}, n); err != nil {
		t.Fatal(err)
	}
	n.Labels[kubehtcv1alpha1.QueueLabel] = queue
	if err := kc.Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
}

func runPods(t *testing.T, ns, prefix, cpu string, n int) {
	t.Helper()
	cs := cluster.Client()
	for i := range n {
		if _, err := cs.CoreV1().Pods(ns).Create(context.Background(), sleeper(ns, fmt.Sprintf("%s-%d", prefix, i), cpu), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		running := 0
		for _, p := range l.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == n, nil
	})
}

func getQueue(t *testing.T, kc client.Client, name string) *kubehtcv1alpha1.Queue {
	t.Helper()
	q := &kubehtcv1alpha1.Queue{}
	if err := kc.Get(context.Background(), client.ObjectKey{Name: name}, q); err != nil {
		t.Fatal(err)
	}
	return q
}

func quantity(q *resource.Quantity) float64 {
	if q == nil {
		return math.NaN()
	}
	return q.AsApproximateFloat64()
}

// TestAccounting: a queue's usage, target and decayed usage in status; pods of a namespace without a queue
// (web services) are not any queue's usage but shrink the capacity queues divide; a restarted controller
// continues the decayed usage from status instead of starting from zero.
func TestAccounting(t *testing.T) {
	clustertest.Require(t, cluster)
	kc := kubeClient(t)
	ctx := context.Background()
	halfLife := 20 * time.Second
	createQueues(t, kc,
		&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: "root"}, Spec: kubehtcv1alpha1.QueueSpec{Policy: &kubehtcv1alpha1.FairSharePolicy{
			HalfLife:           metav1.Duration{Duration: halfLife},
			AccountingInterval: metav1.Duration{Duration: time.Second},
			CoreEquivalents:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
		}}},
		&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: "vo-a"}, Spec: kubehtcv1alpha1.QueueSpec{Parent: "root", Weight: 3}},
		&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: "vo-b"}, Spec: kubehtcv1alpha1.QueueSpec{Parent: "root", Weight: 1}},
	)
	// A zero half-life is refused by the API server.
	bad := getQueue(t, kc, "root")
	bad.Spec.Policy.HalfLife = metav1.Duration{}
	if err := kc.Update(ctx, bad); err == nil {
		t.Error("root Queue with halfLife 0 was accepted")
	}

	labelledNamespace(t, kc, "acct-a", "vo-a")
	labelledNamespace(t, kc, "acct-web", "")
	// 4 nodes × 16 cores = 64; web pods take 2 × 8 = 16, so the queues divide 48: vo-a 36, vo-b 12.
	runPods(t, "acct-web", "web", "8", 2)
	runPods(t, "acct-a", "job", "2", 3)

	stop := startController(t)
	var first *kubehtcv1alpha1.Queue
	clustertest.Poll(t, time.Minute, func(context.Context) (bool, error) {
		first = getQueue(t, kc, "vo-a")
		return first.Status.LastAccountingTime != nil && first.Status.RunningPods == 3 &&
			getQueue(t, kc, "vo-b").Status.LastAccountingTime != nil && getQueue(t, kc, "root").Status.LastAccountingTime != nil, nil
	})
	a := first.Status
	if got := []float64{quantity(a.UsageCoreEquivalents), quantity(a.Target), quantity(getQueue(t, kc, "vo-b").Status.Target)}; got[0] != 6 || got[1] != 36 || got[2] != 12 {
		t.Errorf("vo-a usage, vo-a target, vo-b target = %v, want [6 36 12] (web pods' 16 cores excluded from 64)", got)
	}
	if a.Share != "0.750" || len(a.Users) != 1 || a.Users[0].Name != "acct-a" || a.Users[0].RunningPods != 3 {
		t.Errorf("share %q users %+v, want 0.750 and user acct-a with 3 pods", a.Share, a.Users)
	}
	root := getQueue(t, kc, "root")
	if got := quantity(root.Status.Target); got != 48 {
		t.Errorf("root target (capacity of queues) = %g, want 48", got)
	}

	// Let the decayed usage grow toward 6 for a while, then stop the controller and take the pods away.
	clustertest.Poll(t, 2*time.Minute, func(context.Context) (bool, error) {
		return quantity(getQueue(t, kc, "vo-a").Status.DecayedUsage) > 3, nil
	})
	stop()
	before := getQueue(t, kc, "vo-a").Status
	if err := cluster.Client().CoreV1().Pods("acct-a").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // let time pass while no controller runs

	stop = startController(t)
	defer stop()
	var after kubehtcv1alpha1.QueueStatus
	clustertest.Poll(t, time.Minute, func(context.Context) (bool, error) {
		after = getQueue(t, kc, "vo-a").Status
		return after.LastAccountingTime.After(before.LastAccountingTime.Time) && after.RunningPods == 0, nil
	})
	// The new controller decays the stored value over the gap with the usage it sees (0 if the pods are gone
	// by its first interval, else 6 for that first step): D' = β·D + (1−β)·u. A reset would give ≈ 0.
	dt := after.LastAccountingTime.Sub(before.LastAccountingTime.Time)
	d := quantity(before.DecayedUsage)
	low, high := fairshare.Decay(d, 0, dt, halfLife), fairshare.Decay(d, 6, dt, halfLife)
	got := quantity(after.DecayedUsage)
	if got < low-0.002 || got > high+0.002 {
		t.Errorf("after restart: decayed usage %g, want between %g and %g (%g decayed over %s)", got, low, high, d, dt)
	}
	t.Logf("decayed usage %g before restart, %g after %s (expected %g–%g)", d, got, dt.Round(time.Millisecond), low, high)
}
