package packspread

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	tf "k8s.io/kubernetes/pkg/scheduler/testing/framework"
	"k8s.io/utils/ptr"

	config "github.com/kubehtc/kubehtc/apis/config/v1alpha1"
	"github.com/kubehtc/kubehtc/scheduler/internal/gpufrag"
)

const gpu = v1.ResourceName("nvidia.com/gpu")

func node(name, zone string, cpu, memGi, gpus int64) *v1.Node {
	alloc := v1.ResourceList{
		v1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(memGi<<30, resource.BinarySI),
		v1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
	}
	if gpus > 0 {
		alloc[gpu] = *resource.NewQuantity(gpus, resource.DecimalSI)
	}
	labels := map[string]string{v1.LabelHostname: name}
	if zone != "" {
		labels[v1.LabelTopologyZone] = zone
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Status: v1.NodeStatus{Allocatable: alloc, Capacity: alloc}}
}

type podOpt func(*v1.Pod)

func onNode(n string) podOpt { return func(p *v1.Pod) { p.Spec.NodeName = n } }
func withClass(c string) podOpt {
	return func(p *v1.Pod) { p.Labels[config.DefaultClassLabel] = c }
}
func ownedBy(kind string, uid types.UID) podOpt {
	return func(p *v1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: string(uid), UID: uid, Controller: ptr.To(true)}}
	}
}
func withGPUs(n int64) podOpt {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Requests[gpu] = *resource.NewQuantity(n, resource.DecimalSI)
		p.Spec.Containers[0].Resources.Limits = v1.ResourceList{gpu: *resource.NewQuantity(n, resource.DecimalSI)}
	}
}

var podSeq int

func pod(cpu, memGi int64, opts ...podOpt) *v1.Pod {
	podSeq++
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", podSeq), Namespace: "ns", UID: types.UID(fmt.Sprintf("uid-%d", podSeq)), Labels: map[string]string{}},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
			v1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(memGi<<30, resource.BinarySI),
		}}}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// scores runs PreEnqueue for the pods seen before p, then PreScore, Score and NormalizeScore of the plugin,
// built by a real framework over a snapshot of nodes and existing pods, and returns node name -> score.
func scores(t *testing.T, args runtime.Object, p *v1.Pod, nodes []*v1.Node, existing, seen []*v1.Pod) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	snapshot := cache.NewSnapshot(existing, nodes)
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil, frameworkruntime.WithSnapshotSharedLister(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := New(ctx, args, fh)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range seen {
		if st := pl.(fwk.PreEnqueuePlugin).PreEnqueue(ctx, q); !st.IsSuccess() {
			t.Fatalf("PreEnqueue: %v", st)
		}
	}
	state := framework.NewCycleState()
	if st := pl.(fwk.PreScorePlugin).PreScore(ctx, state, p, tf.BuildNodeInfos(nodes)); !st.IsSuccess() {
		t.Fatalf("PreScore: %v", st)
	}
	var list fwk.NodeScoreList
	for _, n := range nodes {
		ni, err := snapshot.Get(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		s, st := pl.(fwk.ScorePlugin).Score(ctx, state, p, ni)
		if !st.IsSuccess() {
			t.Fatalf("Score on %s: %v", n.Name, st)
		}
		list = append(list, fwk.NodeScore{Name: n.Name, Score: s})
	}
	if ext := pl.(fwk.ScorePlugin).ScoreExtensions(); ext != nil {
		if st := ext.NormalizeScore(ctx, state, p, list); !st.IsSuccess() {
			t.Fatalf("NormalizeScore: %v", st)
		}
	}
	out := map[string]int64{}
	for _, ns := range list {
		if ns.Score < fwk.MinNodeScore || ns.Score > fwk.MaxNodeScore {
			t.Errorf("score %d on %s is out of range", ns.Score, ns.Name)
		}
		out[ns.Name] = ns.Score
	}
	return out
}

// withModel labels a node with its GPU model.
func withModel(n *v1.Node, model string) *v1.Node {
	n.Labels[gpufrag.ModelLabel] = model
	return n
}

// onlyModels requires GPU models by node affinity.
func onlyModels(models ...string) podOpt {
	return func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
			NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{Key: gpufrag.ModelLabel, Operator: v1.NodeSelectorOpIn, Values: models}}}},
		}}}
	}
}

func TestScore(t *testing.T) {
	rs := types.UID("rs-1")
	cases := []struct {
		name     string
		args     runtime.Object
		pod      *v1.Pod
		nodes    []*v1.Node
		existing []*v1.Pod
		// seen are pods the plugin saw before (PreEnqueue): the distribution of GPU shapes.
		seen []*v1.Pod
		want map[string]int64
	}{
		{
			name:     "batch packs onto the fuller node",
			pod:      pod(2, 4, withClass("batch")),
			nodes:    []*v1.Node{node("empty", "a", 32, 128, 0), node("half", "a", 32, 128, 0)},
			existing: []*v1.Pod{pod(16, 64, onNode("half"))},
			want: map[string]int64{
				// empty: cpu 100*2/32 = 6, mem 100*4/128 = 3 -> (6+3)/2 = 4
				"empty": 4,
				// half: cpu 100*18/32 = 56, mem 100*68/128 = 53 -> (56+53)/2 = 54
				"half": 54,
			},
		},
		{
			name:     "batch avoids GPU nodes: full penalty scores them 0",
			pod:      pod(1, 1, withClass("batch")),
			nodes:    []*v1.Node{node("cpu", "a", 32, 128, 0), node("gpu", "a", 64, 512, 8)},
			existing: []*v1.Pod{pod(30, 8, onNode("gpu"))},
			want: map[string]int64{
				// cpu: cpu 100*1/32 = 3, mem 100*1/128 = 0 -> 3/2 = 1
				"cpu": 1,
				// gpu: cpu 100*31/64 = 48, mem 100*9/512 = 1 -> 24, then * (100-100)/100 = 0
				"gpu": 0,
			},
		},
		{
			name:  "half penalty lets a much fuller GPU node win",
			args:  &config.PackSpreadArgs{GPUNodePenalty: ptr.To[int64](50)},
			pod:   pod(1, 1, withClass("batch")),
			nodes: []*v1.Node{node("cpu", "a", 32, 128, 0), node("gpu", "a", 32, 128, 8)},
			existing: []*v1.Pod{
				pod(30, 120, onNode("gpu")),
			},
			want: map[string]int64{
				// cpu: (3 + 0)/2 = 1
				"cpu": 1,
				// gpu: cpu 100*31/32 = 96, mem 100*121/128 = 94 -> 95, * 50/100 = 47
				"gpu": 47,
			},
		},
		{
			name:  "the minimum of 1 on CPU nodes keeps tiny pods off GPU nodes",
			pod:   pod(0, 0, withClass("batch")),
			nodes: []*v1.Node{node("cpu", "a", 32, 128, 0), node("gpu", "a", 32, 128, 8)},
			want:  map[string]int64{"cpu": 1, "gpu": 0},
		},
		{
			name:  "service spreads away from its owner's replicas and their zone",
			pod:   pod(1, 1, ownedBy("ReplicaSet", rs)),
			nodes: []*v1.Node{node("a1", "a", 32, 128, 0), node("a2", "a", 32, 128, 0), node("b1", "b", 32, 128, 0)},
			existing: []*v1.Pod{
				pod(1, 1, ownedBy("ReplicaSet", rs), onNode("a1")),
				pod(20, 64, onNode("b1")), // b1 is busier, but has no replica
			},
			want: map[string]int64{
				// a1: node 100/2 = 50, zone 100/2 = 50, free 100 - (100*2/32=6 + 100*2/128=1)/2=3 -> 97
				//     (4*50 + 2*50 + 97)/7 = 397/7 = 56
				"a1": 56,
				// a2: node 100, zone 50, free 100 - (3+0)/2=1 -> 99: (400 + 100 + 99)/7 = 85
				"a2": 85,
				// b1: node 100, zone 100, free 100 - (100*21/32=65 + 100*65/128=50)/2=57 -> 43: (400+200+43)/7 = 91
				"b1": 91,
			},
		},
		{
			name:  "gpu pod: best fit leaves free GPUs together",
			pod:   pod(4, 32, withGPUs(2)),
			nodes: []*v1.Node{node("empty", "a", 64, 512, 8), node("six-used", "a", 64, 512, 8), node("four-used", "a", 64, 512, 8)},
			existing: []*v1.Pod{
				pod(24, 192, withGPUs(6), onNode("six-used")),
				pod(16, 128, withGPUs(4), onNode("four-used")),
			},
			// Only this pod's shape is known: it fits every node before and after, so the fragmentation gain is 0
			// everywhere and best fit decides. Raw = 0*128 + bestFit, then min-max onto 0-100:
			want: map[string]int64{
				// empty: left 6 -> fit 100*2/8 = 25; alloc (100*4/64=6 + 100*32/512=6)/2 = 6 -> (9*25+6)/10 = 23 -> 0
				"empty": 0,
				// six-used: left 0 -> fit 100; alloc (100*28/64=43 + 100*224/512=43)/2 = 43 -> (900+43)/10 = 94 -> 100
				"six-used": 100,
				// four-used: left 2 -> fit 75; alloc (100*20/64=31 + 100*160/512=31)/2=31 -> (675+31)/10 = 70
				// -> (70-23)*100/(94-23) = 66
				"four-used": 66,
			},
		},
		{
			name:     "gpu pod: with 8-GPU pods seen, a 1-GPU pod keeps whole nodes whole",
			pod:      pod(4, 16, withGPUs(1)),
			seen:     []*v1.Pod{pod(32, 128, withGPUs(8)), pod(4, 16, withGPUs(1))},
			nodes:    []*v1.Node{node("whole", "a", 64, 512, 8), node("three-free", "a", 64, 512, 8), node("two-gpu", "a", 16, 64, 2)},
			existing: []*v1.Pod{pod(20, 80, withGPUs(5), onNode("three-free"))},
			// Classes: 1 GPU (2/3), 8 GPUs (1/3). Gain = F before - F after, F = free GPUs x share of classes
			// that do not fit; raw = round(1000*gain)*128 + bestFit.
			want: map[string]int64{
				// whole: F 0 -> 7/3; gain -2.333 -> -2333*128 + 11 = -298613 (min) -> 0
				"whole": 0,
				// three-free: F 3/3 -> 2/3; gain 0.333 -> 333*128 + (9*75+27)/10=70 = 42694 (max) -> 100
				"three-free": 100,
				// two-gpu: F 2/3 -> 1/3; gain 0.333 -> 42624 + (9*50+25)/10=47 = 42671
				// -> (42671+298613)*100/(42694+298613) = 99
				"two-gpu": 99,
			},
		},
		{
			name:  "gpu pod: an unconstrained pod leaves the model that constrained pods need",
			pod:   pod(4, 16, withGPUs(1)),
			seen:  []*v1.Pod{pod(4, 16, withGPUs(1), onlyModels("A100"))},
			nodes: []*v1.Node{withModel(node("a100", "a", 64, 512, 8), "A100"), withModel(node("t4", "a", 64, 512, 8), "T4")},
			// Classes: 1 GPU any model (1/2), 1 GPU A100 only (1/2). Best fit is 11 on both (left 7 -> fit 12,
			// alloc 4).
			want: map[string]int64{
				// a100: both classes fit before and after: gain 0 -> raw 11 -> 0
				"a100": 0,
				// t4: the A100 class never fits: F = 8/2 -> 7/2, gain 0.5 -> 500*128 + 11 -> 100
				"t4": 100,
			},
		},
		{
			name:  "cpu weight only",
			args:  &config.PackSpreadArgs{ResourceWeights: map[string]int64{"cpu": 1}},
			pod:   pod(8, 100, withClass("batch")),
			nodes: []*v1.Node{node("n", "a", 32, 128, 0)},
			// cpu 100*8/32 = 25; memory not weighed
			want: map[string]int64{"n": 25},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := scores(t, tc.args, tc.pod, tc.nodes, tc.existing, tc.seen)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("scores (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	args, err := config.DecodePackSpreadArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		pod  *v1.Pod
		want config.WorkloadClass
	}{
		{"explicit label wins over GPUs", pod(1, 1, withGPUs(1), withClass("batch")), config.ClassBatch},
		{"explicit service", pod(1, 1, withClass("service")), config.ClassService},
		{"unknown label value is ignored", pod(1, 1, withClass("fast"), ownedBy("ReplicaSet", "x")), config.ClassService},
		{"GPU request", pod(1, 1, withGPUs(2), ownedBy("Job", "j")), config.ClassGPU},
		{"ReplicaSet owner", pod(1, 1, ownedBy("ReplicaSet", "x")), config.ClassService},
		{"StatefulSet owner", pod(1, 1, ownedBy("StatefulSet", "x")), config.ClassService},
		{"Job owner", pod(1, 1, ownedBy("Job", "x")), config.ClassBatch},
		{"GridJob owner", pod(1, 1, ownedBy("GridJob", "x")), config.ClassBatch},
		{"PodGroup member", pod(1, 1, func(p *v1.Pod) { p.Labels[config.PodGroupLabel] = "g" }), config.ClassBatch},
		{"bare pod: default class", pod(1, 1), config.ClassBatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.pod, args); got != tc.want {
				t.Errorf("Classify = %s, want %s", got, tc.want)
			}
		})
	}
	custom, err := config.DecodePackSpreadArgs(&runtime.Unknown{Raw: []byte(`{"defaultClass":"service","batchOwnerKinds":["Job","MPIJob"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := Classify(pod(1, 1), custom); got != config.ClassService {
		t.Errorf("custom defaultClass: got %s", got)
	}
	if got := Classify(pod(1, 1, ownedBy("MPIJob", "m")), custom); got != config.ClassBatch {
		t.Errorf("custom batchOwnerKinds: got %s", got)
	}
}

func TestArgsErrors(t *testing.T) {
	cases := []struct {
		raw  string
		want string
	}{
		{`{"gpuNodePenalty": 101}`, "gpuNodePenalty: 101 is not in [0, 100]"},
		{`{"defaultClass": "web"}`, `defaultClass: "web" is not one of`},
		{`{"resourceWeights": {"gpu": 1}}`, `resourceWeights: "gpu": only cpu and memory`},
		{`{"resourceWeights": {"cpu": 0, "memory": 0}}`, "at least one weight must be positive"},
		{`{"classLabel": "bad label"}`, "classLabel"},
		{`{"serviceOwnerKinds": ["Job"]}`, `serviceOwnerKinds: "Job" is also in batchOwnerKinds`},
		{`{"fragmentationGPURequest": -2}`, "fragmentationGPURequest"},
		{`{"gpuNodePenalty": 50, "typo": 1}`, `unknown field "typo"`},
	}
	for _, tc := range cases {
		_, err := config.DecodePackSpreadArgs(&runtime.Unknown{Raw: []byte(tc.raw)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("args %s: error %v, want one containing %q", tc.raw, err, tc.want)
		}
	}
	if _, err := config.DecodePackSpreadArgs(&v1.Pod{}); err == nil {
		t.Error("args of the wrong type accepted")
	}
}

func FuzzDecodePackSpreadArgs(f *testing.F) {
	f.Add([]byte(`{"gpuNodePenalty": 30, "resourceWeights": {"cpu": 2, "memory": 1}}`))
	f.Add([]byte(`{"defaultClass": "service"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		args, err := config.DecodePackSpreadArgs(&runtime.Unknown{Raw: raw})
		if err != nil {
			return
		}
		// Anything accepted is usable: classification and weights are well-defined.
		if Classify(pod(1, 1), args) == "" {
			t.Fatal("empty class")
		}
		if args.ResourceWeights["cpu"]+args.ResourceWeights["memory"] <= 0 {
			t.Fatalf("accepted weights %v", args.ResourceWeights)
		}
	})
}

func TestGPUFragmentation(t *testing.T) {
	nodes := []*v1.Node{node("g8a", "a", 64, 512, 8), node("g8b", "a", 64, 512, 8), node("g2", "a", 64, 512, 2), node("cpu", "a", 32, 128, 0)}
	pods := []*v1.Pod{
		pod(1, 1, withGPUs(7), onNode("g8a")),                                                       // 1 free: fragmented (1 < 8)
		pod(1, 1, withGPUs(2), onNode("g8b")),                                                       // 6 free: fragmented (6 < 8)
		pod(1, 1, withGPUs(4), onNode("g8b"), func(p *v1.Pod) { p.Status.Phase = v1.PodSucceeded }), // finished: holds nothing
		pod(1, 1, withGPUs(1)),                                                                      // unbound
	}
	got := GPUFragmentation(nodes, pods, gpu, 8)
	// g2 is empty: 2 free, not fragmented (2 >= min(8, 2)).
	want := Fragmentation{Capacity: 18, Free: 1 + 6 + 2, Fragmented: 1 + 6}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fragmentation (-want,+got):\n%s", diff)
	}
}

func BenchmarkScore(b *testing.B) {
	ctx := context.Background()
	var nodes []*v1.Node
	var existing []*v1.Pod
	for i := range 1000 {
		n := node(fmt.Sprintf("n%d", i), fmt.Sprintf("z%d", i%3), 32, 128, 0)
		nodes = append(nodes, n)
		existing = append(existing, pod(int64(i%16), 4, onNode(n.Name), func(p *v1.Pod) { p.Namespace = fmt.Sprintf("ns%d", i%5) }, ownedBy("ReplicaSet", types.UID(fmt.Sprintf("rs%d", i%50)))))
	}
	snapshot := cache.NewSnapshot(existing, nodes)
	fh, _ := frameworkruntime.NewFramework(ctx, nil, nil, frameworkruntime.WithSnapshotSharedLister(snapshot))
	pl, err := New(ctx, nil, fh)
	if err != nil {
		b.Fatal(err)
	}
	infos, _ := snapshot.NodeInfos().List()
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
	}{{"batch", pod(2, 4, withClass("batch"))}, {"service", pod(1, 1, ownedBy("ReplicaSet", "rs7"), func(p *v1.Pod) { p.Namespace = "ns2" })}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				state := framework.NewCycleState()
				pl.(fwk.PreScorePlugin).PreScore(ctx, state, tc.pod, infos)
				for _, ni := range infos {
					pl.(fwk.ScorePlugin).Score(ctx, state, tc.pod, ni)
				}
			}
		})
	}
}
