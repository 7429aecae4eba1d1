package gang

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	fwk "k8s.io/kube-scheduler/framework"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/defaultbinder"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/noderesources"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/queuesort"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/kubernetes/pkg/scheduler/metrics"
	tf "k8s.io/kubernetes/pkg/scheduler/testing/framework"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	config "github.com/kubehtc/kubehtc/apis/config/v1alpha1"
)

func node(name, cpu string, gpus int64) *v1.Node {
	alloc := v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("256Gi"), v1.ResourcePods: resource.MustParse("110")}
	if gpus > 0 {
		alloc["nvidia.com/gpu"] = *resource.NewQuantity(gpus, resource.DecimalSI)
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.NodeStatus{Allocatable: alloc, Capacity: alloc}}
}

func pod(name, cpu string, gpus int64, nodeName string) *v1.Pod {
	req := v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("1Gi")}
	if gpus > 0 {
		req["nvidia.com/gpu"] = *resource.NewQuantity(gpus, resource.DecimalSI)
	}
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name), Labels: map[string]string{schedv1alpha1.PodGroupLabel: "g"}},
		Spec: v1.PodSpec{NodeName: nodeName, SchedulerName: "kubehtc",
			Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: req}}}},
	}
}

func members(n int, cpu string, gpus int64) []*v1.Pod {
	out := make([]*v1.Pod, n)
	for i := range out {
		out[i] = pod("m"+string(rune('a'+i)), cpu, gpus, "")
	}
	return out
}

// newTestGang builds the plugin on a real framework (NodeResourcesFit's PreFilter and Filter) over a snapshot
// of the given nodes and running pods.
func newTestGang(t *testing.T, nodes []*v1.Node, running []*v1.Pod) *Gang {
	t.Helper()
	ctx := context.Background()
	metrics.Register() // the framework records plugin metrics; registering is idempotent
	fit := func(ctx context.Context, _ runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
		args := &schedconfig.NodeResourcesFitArgs{ScoringStrategy: &schedconfig.ScoringStrategy{
			Type: schedconfig.LeastAllocated, Resources: []schedconfig.ResourceSpec{{Name: "cpu", Weight: 1}}}}
		return noderesources.NewFit(ctx, args, h, feature.Features{})
	}
	fh, err := tf.NewFramework(ctx, []tf.RegisterPluginFunc{
		tf.RegisterQueueSortPlugin(queuesort.Name, queuesort.New),
		tf.RegisterBindPlugin(defaultbinder.Name, defaultbinder.New),
		tf.RegisterPluginAsExtensions(noderesources.Name, fit, "PreFilter", "Filter"),
	}, "kubehtc", frameworkruntime.WithSnapshotSharedLister(cache.NewSnapshot(running, nodes)))
	if err != nil {
		t.Fatal(err)
	}
	args, err := config.DecodeGangArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Gang{handle: fh, runner: fh, args: args, gpu: "nvidia.com/gpu", now: time.Now,
		gangs: map[string]*gangState{}, reserved: map[string]map[types.UID]reservation{}}
}

func perNode(plan map[types.UID]string) map[string]int {
	out := map[string]int{}
	for _, n := range plan {
		out[n]++
	}
	return out
}

func TestPlaceWholeGang(t *testing.T) {
	pg := &schedv1alpha1.PodGroup{Spec: schedv1alpha1.PodGroupSpec{MinMember: 4}}
	cases := []struct {
		name     string
		nodes    []*v1.Node
		running  []*v1.Pod
		reserved []*v1.Pod // placed members of another gang
		pending  []*v1.Pod
		need     int
		want     map[string]int // members per node; nil: the gang does not fit
		wantMsg  string
	}{{
		// 4 x 4 cpu on two empty 8-cpu nodes: best fit fills one node, then the next.
		name:    "fits, packed",
		nodes:   []*v1.Node{node("n1", "8", 0), node("n2", "8", 0), node("n3", "8", 0)},
		pending: members(4, "4", 0), need: 4,
		want: map[string]int{"n1": 2, "n2": 2},
	}, {
		// Free: n1 8-6 = 2, n2 8 → 2 of 3 members of 4 cpu fit; none is placed.
		name:    "does not fit: nothing placed, message counts",
		nodes:   []*v1.Node{node("n1", "8", 0), node("n2", "8", 0)},
		running: []*v1.Pod{pod("busy", "6", 0, "n1")},
		pending: members(3, "4", 0), need: 3,
		wantMsg: "gang ns/g needs 3 pods (4 cpu, 1Gi memory each), 2 fit: insufficient cpu",
	}, {
		// Another gang holds n1 whole (2 x 4 cpu placed, not yet bound): this gang must use n2 and n3.
		name:     "respects another gang's placement",
		nodes:    []*v1.Node{node("n1", "8", 0), node("n2", "8", 0), node("n3", "8", 0)},
		reserved: []*v1.Pod{pod("other-0", "4", 0, "n1"), pod("other-1", "4", 0, "n1")},
		pending:  members(4, "4", 0), need: 4,
		want: map[string]int{"n2": 2, "n3": 2},
	}, {
		// Same, but only 2 nodes: the other gang's placement leaves room for 2 of 4.
		name:     "another gang's placement leaves too little",
		nodes:    []*v1.Node{node("n1", "8", 0), node("n2", "8", 0)},
		reserved: []*v1.Pod{pod("other-0", "4", 0, "n1"), pod("other-1", "4", 0, "n1")},
		pending:  members(4, "4", 0), need: 4,
		wantMsg: "2 fit",
	}, {
		// GPU best fit: g1 has 2 GPUs free, g2 8: two 1-GPU members go to g1 and keep g2 whole.
		name:    "GPU members best-fit",
		nodes:   []*v1.Node{node("g1", "64", 8), node("g2", "64", 8)},
		running: []*v1.Pod{pod("busy", "1", 6, "g1")},
		pending: members(2, "1", 1), need: 2,
		want: map[string]int{"g1": 2},
	}, {
		// A gang that fits on one node goes on one node: 4 x 2 GPUs onto g2 (8 free), not 3 onto g1 (6 free)
		// and 1 onto g2, which would leave no node with 8 GPUs.
		name:    "GPU gang kept on one node",
		nodes:   []*v1.Node{node("g1", "64", 8), node("g2", "64", 8)},
		running: []*v1.Pod{pod("busy", "1", 2, "g1")},
		pending: members(4, "1", 2), need: 4,
		want: map[string]int{"g2": 4},
	}, {
		// CPU-only members avoid the GPU node while CPU nodes have room.
		name:    "CPU members avoid GPU nodes",
		nodes:   []*v1.Node{node("g1", "64", 8), node("c1", "32", 0)},
		pending: members(2, "8", 0), need: 2,
		want: map[string]int{"c1": 2},
	}, {
		// minMember 2 of 3 pending: 2 fit (8 cpu), the third is left to schedule on its own later.
		name:    "more members than minMember",
		nodes:   []*v1.Node{node("n1", "8", 0)},
		pending: members(3, "4", 0), need: 2,
		want: map[string]int{"n1": 2},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pl := newTestGang(t, tc.nodes, tc.running)
			for _, r := range tc.reserved {
				if pl.reserved[r.Spec.NodeName] == nil {
					pl.reserved[r.Spec.NodeName] = map[types.UID]reservation{}
				}
				pl.reserved[r.Spec.NodeName][r.UID] = reservation{gang: "ns/other", pod: r, req: podRequest(r)}
			}
			plan, msg := pl.place(context.Background(), "ns/g", tc.pending, tc.need, pg)
			if tc.want == nil {
				if plan != nil {
					t.Fatalf("placed %v, want no placement", perNode(plan))
				}
				if !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("message %q does not contain %q", msg, tc.wantMsg)
				}
				return
			}
			if plan == nil {
				t.Fatalf("no placement: %s", msg)
			}
			if diff := cmp.Diff(tc.want, perNode(plan)); diff != "" {
				t.Errorf("members per node (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestPlaceMinResources(t *testing.T) {
	pl := newTestGang(t, []*v1.Node{node("n1", "8", 0)}, nil)
	pg := &schedv1alpha1.PodGroup{Spec: schedv1alpha1.PodGroupSpec{MinMember: 1,
		MinResources: v1.ResourceList{v1.ResourceCPU: resource.MustParse("16")}}}
	plan, msg := pl.place(context.Background(), "ns/g", members(1, "1", 0), 1, pg)
	// The cluster has 8 cpu free; minResources asks 16.
	if plan != nil || !strings.Contains(msg, "needs minResources 16 cpu") {
		t.Errorf("plan %v, message %q; want no placement and the minResources message", plan, msg)
	}
}

func TestFilterRespectsReservations(t *testing.T) {
	ni := framework.NewNodeInfo()
	ni.SetNode(node("n1", "8", 0))
	busy := pod("busy", "2", 0, "n1")
	pi, _ := framework.NewPodInfo(busy)
	ni.AddPodInfo(pi)
	cases := []struct {
		name     string
		reserved request
		cpu      string
		want     fwk.Code
	}{
		// 8 - 2 used - 4 reserved = 2 free.
		{name: "fits beside the reservation", reserved: request{milliCPU: 4000}, cpu: "2", want: fwk.Success},
		{name: "would take reserved capacity", reserved: request{milliCPU: 4000}, cpu: "3", want: fwk.Unschedulable},
		{name: "no reservation on the node", cpu: "6", want: fwk.Success},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pod("x", tc.cpu, 0, "")
			cs := framework.NewCycleState()
			st := &filterState{uid: p.UID, req: podRequest(p), reserved: map[string]request{}}
			if tc.reserved.milliCPU > 0 {
				st.reserved["n1"] = tc.reserved
			}
			cs.Write(filterKey, st)
			got := (&Gang{}).Filter(context.Background(), cs, p, ni)
			if got.Code() != tc.want {
				t.Errorf("Filter = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	args, _ := config.DecodeGangArgs(nil)
	pl := &Gang{args: args}
	thirty := int32(30)
	cases := []struct {
		name string
		pg   *schedv1alpha1.PodGroup
		want time.Duration
	}{
		{name: "PodGroup sets it", pg: &schedv1alpha1.PodGroup{Spec: schedv1alpha1.PodGroupSpec{ScheduleTimeoutSeconds: &thirty}}, want: 30 * time.Second},
		{name: "plugin default", pg: &schedv1alpha1.PodGroup{}, want: 60 * time.Second},
	}
	for _, tc := range cases {
		if got := pl.timeout(tc.pg); got != tc.want {
			t.Errorf("%s: timeout = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestRequestString(t *testing.T) {
	r := podRequest(pod("p", "1500m", 2, ""))
	if got, want := r.String(), "1500m cpu, 1Gi memory, 2 nvidia.com/gpu"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestPreEnqueueRefusesTwoGangAPIs(t *testing.T) {
	p := pod("m", "1", 0, "")
	name := "upstream"
	p.Spec.SchedulingGroup = &v1.PodSchedulingGroup{PodGroupName: &name}
	got := (&Gang{}).PreEnqueue(context.Background(), p)
	if got.Code() != fwk.UnschedulableAndUnresolvable || !strings.Contains(got.Message(), ReasonTwoGangAPIs) {
		t.Errorf("PreEnqueue = %v, want UnschedulableAndUnresolvable: %s", got, ReasonTwoGangAPIs)
	}
}

// BenchmarkPlace times the whole-gang placement of a 3-pod gang (the PreFilter of its first member) on a
// cluster of 1,000 and 5,000 half-full nodes, for comparison with upstream's PodGroup scheduling attempt
// (3.7-5.7 ms for 3-pod gangs at 5,000 nodes in scheduler_perf). Filters: NodeResourcesFit only.
func BenchmarkPlace(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			nodes := make([]*v1.Node, n)
			running := make([]*v1.Pod, 0, n)
			for i := range nodes {
				nodes[i] = node(fmt.Sprintf("n%05d", i), "32", 0)
				running = append(running, pod(fmt.Sprintf("busy%05d", i), "16", 0, nodes[i].Name))
			}
			t := &testing.T{}
			pl := newTestGang(t, nodes, running)
			pg := &schedv1alpha1.PodGroup{Spec: schedv1alpha1.PodGroupSpec{MinMember: 3}}
			gang := members(3, "4", 0)
			b.ResetTimer()
			for range b.N {
				if plan, msg := pl.place(context.Background(), "ns/g", gang, 3, pg); plan == nil {
					b.Fatal(msg)
				}
			}
		})
	}
}
