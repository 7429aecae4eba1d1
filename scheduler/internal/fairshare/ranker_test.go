package fairshare

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

func testRanker(t *testing.T, now time.Time) *ranker {
	t.Helper()
	r, err := emptyRanker(func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func pod(ns, name, user, node, cpu string) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "/" + name), Labels: map[string]string{}},
		Spec: v1.PodSpec{NodeName: node, Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}}}}},
		Status: v1.PodStatus{Phase: v1.PodRunning},
	}
	if user != "" {
		p.Labels[kubehtcv1alpha1.UserLabel] = user
	}
	return p
}

// The ranker projects Queue status to now with the live usage it sees: D = β·D(status) + (1−β)·u.
func TestRankerProjectsStatusWithLiveUsage(t *testing.T) {
	now := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	r := testRanker(t, now)
	d := func(v string) *resource.Quantity { q := resource.MustParse(v); return &q }
	last := &metav1.MicroTime{Time: now.Add(-24 * time.Hour)} // one half-life (default 24h) ago
	r.setQueue(&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: "root"}}, true)
	for _, q := range []struct{ name, decayed string }{{"a", "10"}, {"b", "4"}} {
		r.setQueue(&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: q.name}, Spec: kubehtcv1alpha1.QueueSpec{Parent: "root", Weight: 1},
			Status: kubehtcv1alpha1.QueueStatus{DecayedUsage: d(q.decayed), LastAccountingTime: last}}, true)
	}
	for ns, q := range map[string]string{"ns-a": "a", "ns-b": "b"} {
		r.setNamespace(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{kubehtcv1alpha1.QueueLabel: q}}}, true)
	}
	r.setNamespace(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, true)
	r.setNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("32")}}}, true)
	r.setPod(pod("web", "w", "", "n1", "12"), true)

	// No live usage: a 0.5·10 = 5, b 0.5·4 = 2: b first (slot 1: no users yet), then a (slot 2).
	if diff := cmp.Diff([]int{2, 1, 0}, []int{r.Rank(pod("ns-a", "x", "", "", "1")), r.Rank(pod("ns-b", "x", "", "", "1")), r.Rank(pod("web", "x", "", "", "1"))}); diff != "" {
		t.Errorf("ranks a, b, web (-want,+got):\n%s", diff)
	}
	// b binds 8 cores: 0.5·4 + 0.5·8 = 6 > a's 5, so a moves ahead before the controller's next interval.
	r.setPod(pod("ns-b", "big", "", "n1", "8"), true)
	tree, ranking, err := r.State()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{"a": tree.Node("a").Decayed, "b": tree.Node("b").Decayed, "capacity": tree.Root.Target}
	// Capacity: 32 cores − 12 of the web pod (outside queues) = 20.
	if diff := cmp.Diff(map[string]float64{"a": 5, "b": 6, "capacity": 20}, got); diff != "" {
		t.Errorf("decayed usage and capacity (-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1, 2}, []int{ranking.QueueRank["a"], ranking.QueueRank["b"]}); diff != "" {
		t.Errorf("queue ranks a, b (-want,+got):\n%s", diff)
	}
	// The pod finishes: back to b first.
	done := pod("ns-b", "big", "", "n1", "8")
	done.Status.Phase = v1.PodSucceeded
	r.setPod(done, true)
	if a, b := r.Rank(pod("ns-a", "x", "", "", "1")), r.Rank(pod("ns-b", "x", "", "", "1")); !(b < a) {
		t.Errorf("after the pod finished: rank a %d, b %d; want b first", a, b)
	}
}

// Assume counts a pod until the informer reports it bound, and only once.
func TestRankerAssume(t *testing.T) {
	r := testRanker(t, time.Now())
	r.setQueue(&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: "root"}}, true)
	r.setQueue(&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: kubehtcv1alpha1.QueueSpec{Parent: "root"}}, true)
	r.setNamespace(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: map[string]string{kubehtcv1alpha1.QueueLabel: "a"}}}, true)
	usage := func() float64 {
		tree, _, err := r.State()
		if err != nil {
			t.Fatal(err)
		}
		return tree.Node("a").Usage
	}
	p := pod("ns", "p", "", "", "2")
	r.Assume(p)
	r.Assume(p)
	bound := pod("ns", "p", "", "n1", "2")
	first := usage()
	r.setPod(bound, true)
	second := usage()
	r.Forget(p) // a late Unreserve must not remove the bound pod
	third := usage()
	if diff := cmp.Diff([]float64{2, 2, 2}, []float64{first, second, third}); diff != "" {
		t.Errorf("usage after assume, bind, forget (-want,+got):\n%s", diff)
	}
}
