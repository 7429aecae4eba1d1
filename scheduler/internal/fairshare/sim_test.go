package fairshare

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// Account writes decayed usage into Queue status as the quota controller does, on the virtual clock:
// D ← β·D + (1−β)·u, β = 0.5^(Δt/24h) with the default half-life; ranks follow.
func TestSimAccount(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	s, err := NewSim(func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	s.SetQueue(&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: kubehtcv1alpha1.RootQueueName}})
	for _, q := range []string{"a", "b"} {
		s.SetQueue(&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: q}, Spec: kubehtcv1alpha1.QueueSpec{Parent: "root", Weight: 1}})
		s.SetNamespace(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns-" + q, Labels: map[string]string{kubehtcv1alpha1.QueueLabel: q}}})
	}
	s.SetNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("16")}}})
	decayed := func() map[string]string {
		out := map[string]string{}
		for _, q := range []string{"a", "b"} {
			if d := s.r.queues[q].Status.DecayedUsage; d != nil {
				out[q] = d.String()
			}
		}
		return out
	}
	if got := s.Account(); got != time.Minute {
		t.Errorf("interval %v, want the default 1m", got)
	}
	// First interval: never accounted, Δt = 0: D = 0 for both.
	if diff := cmp.Diff(map[string]string{"a": "0", "b": "0"}, decayed()); diff != "" {
		t.Errorf("first interval (-want,+got):\n%s", diff)
	}
	s.SetPod(pod("ns-a", "p", "", "n1", "8"))
	// One half-life later with 8 cores in use by a: D(a) = 0.5·0 + 0.5·8 = 4, D(b) = 0.
	now = start.Add(24 * time.Hour)
	s.Account()
	if diff := cmp.Diff(map[string]string{"a": "4", "b": "0"}, decayed()); diff != "" {
		t.Errorf("after one half-life (-want,+got):\n%s", diff)
	}
	if ra, rb := s.View().Rank(pod("ns-a", "x", "", "", "1")), s.View().Rank(pod("ns-b", "x", "", "", "1")); !(rb < ra) {
		t.Errorf("ranks a %d, b %d: want b (no usage) first", ra, rb)
	}
	// a's pod finishes; another half-life: D(a) = 0.5·4 + 0.5·0 = 2.
	s.DeletePod(pod("ns-a", "p", "", "n1", "8"))
	now = start.Add(48 * time.Hour)
	s.Account()
	if diff := cmp.Diff(map[string]string{"a": "2", "b": "0"}, decayed()); diff != "" {
		t.Errorf("after the pod finished and another half-life (-want,+got):\n%s", diff)
	}
}
