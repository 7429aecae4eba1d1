package simframework

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/scheduler/internal/podgroup"
)

func pod(name, profile, cpu string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)},
		Spec: v1.PodSpec{SchedulerName: profile, Containers: []v1.Container{{
			Name:      "c",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}},
		}}},
	}
}

// TestFillsAndFrees fills two 4-core nodes with 1-core pods on each profile: the ninth does not fit until one
// finishes. Both profiles must also place pods where their scoring says: the default profile spreads (the
// first two pods on different nodes), kubehtc's packs batch pods (the first two on the same node).
func TestFillsAndFrees(t *testing.T) {
	profiles, err := Profiles()
	if err != nil {
		t.Fatal(err)
	}
	wantSameNode := map[string]bool{"default-scheduler": false, "kubehtc": true}
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			ctx := context.Background()
			s, err := New(ctx, profile, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			t.Logf("disabled without an API server: %v", s.Disabled())
			for _, n := range localcluster.UniformNodePools(2, "4", "16Gi").Nodes() {
				s.AddNode(n)
			}
			var bound []*v1.Pod
			for i := range 8 {
				b, err := s.Schedule(ctx, pod(fmt.Sprintf("p%d", i), profile, "1"))
				if err != nil {
					t.Fatalf("pod %d: %v", i, err)
				}
				bound = append(bound, b...)
			}
			if want, ok := wantSameNode[profile]; ok {
				if got := bound[0].Spec.NodeName == bound[1].Spec.NodeName; got != want {
					t.Errorf("first two pods on %s and %s; same node = %v, want %v", bound[0].Spec.NodeName, bound[1].Spec.NodeName, got, want)
				}
			}
			if _, err := s.Schedule(ctx, pod("p8", profile, "1")); !errors.Is(err, ErrUnschedulable) {
				t.Fatalf("ninth pod on a full cluster: err = %v, want ErrUnschedulable", err)
			}
			if err := s.Remove(bound[3]); err != nil {
				t.Fatal(err)
			}
			b, err := s.Schedule(ctx, pod("p8", profile, "1"))
			if err != nil {
				t.Fatalf("ninth pod after one finished: %v", err)
			}
			if len(b) != 1 {
				t.Fatalf("ninth pod: %d pods bound, want 1", len(b))
			}
			if b[0].Spec.NodeName != bound[3].Spec.NodeName {
				t.Errorf("ninth pod on %s, want the freed node %s", b[0].Spec.NodeName, bound[3].Spec.NodeName)
			}
		})
	}
}

func gangPod(name, gang, cpu string) *v1.Pod {
	p := pod(name, "kubehtc", cpu)
	p.Labels = map[string]string{podgroup.Label: gang}
	return p
}

// TestGangWaitsAtPermit places a gang of three on the kubehtc profile: PreEnqueue holds the first members
// until the third exists, the first two wait at Permit holding their nodes, and the third binds all three.
// A gang that cannot complete in a pass is released by Flush, and its capacity serves another pod.
func TestGangWaitsAtPermit(t *testing.T) {
	ctx := context.Background()
	s, err := New(ctx, "kubehtc", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range localcluster.UniformNodePools(2, "4", "16Gi").Nodes() {
		s.AddNode(n)
	}
	if err := s.AddPodGroup(&schedv1alpha1.PodGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "g"},
		Spec: schedv1alpha1.PodGroupSpec{MinMember: 3}}); err != nil {
		t.Fatal(err)
	}
	members := []*v1.Pod{gangPod("g-0", "g", "3"), gangPod("g-1", "g", "3"), gangPod("g-2", "g", "1")}
	var gated []bool
	for _, m := range members {
		gated = append(gated, errors.Is(s.Submit(ctx, m), ErrGated))
	}
	if diff := cmp.Diff([]bool{true, true, false}, gated); diff != "" {
		t.Errorf("gated at submission (-want,+got):\n%s", diff)
	}
	if err := s.PreEnqueue(ctx, members[0]); err != nil {
		t.Errorf("PreEnqueue once the gang is complete: %v", err)
	}
	var got []string
	for _, m := range members[:2] {
		if _, err := s.Schedule(ctx, m); !errors.Is(err, ErrWaiting) {
			t.Fatalf("%s: err = %v, want ErrWaiting", m.Name, err)
		}
	}
	if s.Waiting() != 2 {
		t.Errorf("%d pods waiting at Permit, want 2", s.Waiting())
	}
	bound, err := s.Schedule(ctx, members[2])
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]bool{}
	for _, b := range bound {
		got = append(got, b.Name)
		nodes[b.Spec.NodeName] = true
	}
	if diff := cmp.Diff([]string{"g-0", "g-1", "g-2"}, got); diff != "" {
		t.Errorf("pods bound by the last member (-want,+got):\n%s", diff)
	}
	// 3+3+1 cores on two 4-core nodes: the two big members cannot share a node.
	if len(nodes) != 2 {
		t.Errorf("gang on %d nodes, want 2", len(nodes))
	}

	// A second gang of two 3-core pods: one node has 1 core free, the other 0 — not even one member fits, so
	// no member waits holding a node.
	if err := s.AddPodGroup(&schedv1alpha1.PodGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "h"},
		Spec: schedv1alpha1.PodGroupSpec{MinMember: 2}}); err != nil {
		t.Fatal(err)
	}
	h := []*v1.Pod{gangPod("h-0", "h", "3"), gangPod("h-1", "h", "3")}
	for _, m := range h {
		_ = s.Submit(ctx, m)
	}
	if _, err := s.Schedule(ctx, h[0]); !errors.Is(err, ErrUnschedulable) {
		t.Fatalf("h-0 on a full cluster: err = %v, want ErrUnschedulable", err)
	}
	// g finishes: h fits; its first member waits, and the pass ends before the second is tried.
	for _, b := range bound {
		if err := s.Remove(b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Schedule(ctx, h[0]); !errors.Is(err, ErrWaiting) {
		t.Fatalf("h-0 on an empty cluster: err = %v, want ErrWaiting", err)
	}
	if flushed, err := s.Flush(ctx); err != nil || len(flushed) != 0 {
		t.Fatalf("Flush = %v, %v; want nothing bound", flushed, err)
	}
	// Released: a 4-core pod now fits on either node (h-0 no longer holds 3 cores of one).
	for i := range 2 {
		if _, err := s.Schedule(ctx, pod(fmt.Sprintf("big-%d", i), "kubehtc", "4")); err != nil {
			t.Errorf("4-core pod %d after the gang was released: %v", i, err)
		}
	}
}

// fairShareScheduler is a Scheduler of profile on one 8-core node with Queues a and b (weights 50/50)
// whose namespaces are labelled, and the pods it evicts.
func fairShareScheduler(t *testing.T, profile string) (*Scheduler, *[]string) {
	t.Helper()
	s, err := New(context.Background(), profile, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	// 8 cores and 16 GiB: the node is 8 core-equivalents (memory counts 4 GiB per core-equivalent by default).
	for _, n := range localcluster.UniformNodePools(1, "8", "16Gi").Nodes() {
		s.AddNode(n)
	}
	s.AddQueue(&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: kubehtcv1alpha1.RootQueueName}})
	for _, q := range []string{"a", "b"} {
		s.AddQueue(&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: q},
			Spec: kubehtcv1alpha1.QueueSpec{Parent: kubehtcv1alpha1.RootQueueName, Weight: 50}})
		s.AddNamespace(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: q, Labels: map[string]string{kubehtcv1alpha1.QueueLabel: q}}})
	}
	var evicted []string
	s.OnEvict(func(p *v1.Pod) { evicted = append(evicted, p.Namespace+"/"+p.Name) })
	return s, &evicted
}

func queuePod(queue, name, profile, cpu string) *v1.Pod {
	p := pod(name, profile, cpu)
	p.Namespace, p.UID = queue, types.UID(queue+"/"+name)
	return p
}

// TestReclaim: queue a fills the node; a pod of b (50/50, no usage) then fails Filter, and on the kubehtc
// profile FairShare's PostFilter reclaims: one pod of a is deleted (OnEvict is told, the pod is off the node)
// and b's pod is bound in the same call. The default profile has no reclaim: b's pod stays unschedulable.
func TestReclaim(t *testing.T) {
	for _, tc := range []struct {
		profile string
		reclaim bool
	}{{"kubehtc", true}, {"default-scheduler", false}} {
		t.Run(tc.profile, func(t *testing.T) {
			ctx := context.Background()
			s, evicted := fairShareScheduler(t, tc.profile)
			var running []*v1.Pod
			for i := range 8 {
				p := queuePod("a", fmt.Sprintf("a-%d", i), tc.profile, "1")
				if err := s.Submit(ctx, p); err != nil {
					t.Fatal(err)
				}
				b, err := s.Schedule(ctx, p)
				if err != nil {
					t.Fatalf("a-%d: %v", i, err)
				}
				running = append(running, b...)
			}
			s.SetNow(Epoch.Add(time.Minute))
			s.Account()
			p := queuePod("b", "b-0", tc.profile, "1")
			if err := s.Submit(ctx, p); err != nil {
				t.Fatal(err)
			}
			bound, err := s.Schedule(ctx, p)
			if !tc.reclaim {
				if !errors.Is(err, ErrUnschedulable) || len(*evicted) != 0 {
					t.Fatalf("b-0 without reclaim: bound %d, err %v, evicted %v; want unschedulable, nothing evicted", len(bound), err, *evicted)
				}
				return
			}
			if err != nil {
				t.Fatalf("b-0 with reclaim: %v", err)
			}
			if len(bound) != 1 || bound[0].Name != "b-0" {
				t.Fatalf("bound %v, want b-0", bound)
			}
			if len(*evicted) != 1 || (*evicted)[0][:2] != "a/" {
				t.Fatalf("evicted %v, want one pod of queue a", *evicted)
			}
			// The victim is gone: removing it again fails, and a ninth 1-core pod does not fit.
			for _, r := range running {
				if r.Namespace+"/"+r.Name == (*evicted)[0] {
					if err := s.Remove(r); err == nil {
						t.Errorf("removing the victim %s again succeeded; it should be gone", r.Name)
					}
				}
			}
			s.SetNow(Epoch.Add(2 * time.Minute))
			s.Account()
			if _, err := s.Schedule(ctx, queuePod("a", "a-8", tc.profile, "1")); !errors.Is(err, ErrUnschedulable) {
				t.Errorf("a-8 on the full node: err = %v, want ErrUnschedulable (a is at or above its target: no reclaim for it)", err)
			}
			if len(*evicted) != 1 {
				t.Errorf("evicted %v after a-8, want only the first victim", *evicted)
			}
		})
	}
}

// TestDefaultPreemption: on the default profile, a pod of higher priority preempts one of lower priority
// through the in-tree DefaultPreemption plugin, and is bound in the same call.
func TestDefaultPreemption(t *testing.T) {
	ctx := context.Background()
	s, evicted := fairShareScheduler(t, "default-scheduler")
	for i := range 8 {
		p := pod(fmt.Sprintf("low-%d", i), "default-scheduler", "1")
		if err := s.Submit(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Schedule(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	high := pod("high", "default-scheduler", "2")
	prio := int32(1000)
	high.Spec.Priority = &prio
	if err := s.Submit(ctx, high); err != nil {
		t.Fatal(err)
	}
	bound, err := s.Schedule(ctx, high)
	if err != nil {
		t.Fatalf("high: %v", err)
	}
	if len(bound) != 1 || bound[0].Name != "high" {
		t.Fatalf("bound %v, want high", bound)
	}
	if len(*evicted) != 2 {
		t.Errorf("evicted %v, want two 1-core pods for a 2-core pod", *evicted)
	}
}
