package alibaba

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/scheduler"
)

var (
	traceDir = flag.String("trace", "", "directory of the openb trace (default: ../shared/traces/alibaba-gpu-v2023 next to the repository)")
	batch    = flag.Int("batch", 400, "pods submitted between checks for an unplaceable GPU pod")
)

var (
	cluster *localcluster.Cluster
	pods    []Pod
)

// defaultTraceDir finds ../shared/traces/alibaba-gpu-v2023 beside the repository root.
func defaultTraceDir() string {
	dir, _ := os.Getwd()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared", "traces", "alibaba-gpu-v2023")
		}
	}
	return ""
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir := *traceDir
	if dir == "" {
		dir = defaultTraceDir()
	}
	if _, err := os.Stat(dir); err != nil {
		fmt.Printf("alibaba replay: no trace at %q (the shared folder is not beside the repository); replay tests skip\n", dir)
		os.Exit(m.Run())
	}
	nf, err := os.Open(filepath.Join(dir, "openb_node_list_all_node.csv"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	nodes, err := ParseNodes(nf)
	nf.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "node list:", err)
		os.Exit(1)
	}
	pf, err := os.Open(filepath.Join(dir, "openb_pod_list_default.csv"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pods, err = ParsePods(pf)
	pf.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pod list:", err)
		os.Exit(1)
	}
	os.Exit(clustertest.Main(m, localcluster.Options{NodePools: NodePools(nodes)}, &cluster))
}

// replayResult is the state when the first GPU pod could not be placed (or the trace ended).
type replayResult struct {
	submitted, placed  int   // pods before the first unplaceable GPU pod, and how many of them were bound
	gpuTotal, gpuAlloc int64 // GPUs of the cluster, and GPUs those pods hold
	stoppedAt          string
}

func (r replayResult) unallocated() float64 { return 1 - float64(r.gpuAlloc)/float64(r.gpuTotal) }

// TestAlibabaFragmentation replays the openb pods in creation order with each profile until the first GPU
// pod cannot be placed, and reports the fraction of GPU capacity left unallocated then (the ATC'23 measure).
func TestAlibabaFragmentation(t *testing.T) {
	clustertest.Require(t, cluster)
	results := map[string]replayResult{}
	for _, profile := range []string{"default-scheduler", scheduler.ProfileName} {
		// A subtest each, so that the namespace's cleanup frees the nodes before the next profile runs.
		t.Run(profile, func(t *testing.T) {
			r := replay(t, cluster.Client(), profile)
			t.Logf("%-17s first unplaceable GPU pod: %s; pods placed before it %d of %d; GPUs allocated %d of %d; unallocated %.1f%%",
				profile, r.stoppedAt, r.placed, r.submitted, r.gpuAlloc, r.gpuTotal, 100*r.unallocated())
			results[profile] = r
		})
	}
	def, ours := results["default-scheduler"], results[scheduler.ProfileName]
	if ours.placed == 0 || def.placed == 0 {
		t.Fatal("nothing was placed")
	}
	// The point of GPU best fit: when the first GPU pod no longer fits, less GPU capacity is stranded.
	if ours.unallocated() > def.unallocated() {
		t.Errorf("kubehtc leaves %.1f%% of GPUs unallocated at saturation, the default profile %.1f%%", 100*ours.unallocated(), 100*def.unallocated())
	}
}

func replay(t *testing.T, cs kubernetes.Interface, profile string) replayResult {
	t.Helper()
	ctx := context.Background()
	ns := "alibaba-" + profile
	clustertest.Namespace(t, cs, ns)
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var r replayResult
	for _, n := range nodes.Items {
		q := n.Status.Allocatable[localcluster.GPUResource]
		r.gpuTotal += q.Value()
	}

	// Pods are created one at a time, so the scheduler's queue sees them in trace order; every batch, wait
	// until each was bound or found unschedulable and look for the first GPU pod that could not be placed.
	for start := 0; start < len(pods); start += *batch {
		end := min(start+*batch, len(pods))
		for i := start; i < end; i++ {
			if _, err := cs.CoreV1().Pods(ns).Create(ctx, replayPod(i, pods[i], profile), metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating pod %d (%s): %v", i, pods[i].Name, err)
			}
		}
		state := waitDecided(t, cs, ns, end)
		for i := 0; i < end; i++ {
			if pods[i].WholeGPUs() > 0 && state[i] == unschedulable {
				// Pods before i were decided before it (FIFO queue, and no resources are ever freed).
				r.stoppedAt = fmt.Sprintf("#%d %s (%d GPUs)", i, pods[i].Name, pods[i].WholeGPUs())
				r.submitted = i
				for j := 0; j < i; j++ {
					if state[j] == bound {
						r.placed++
						r.gpuAlloc += pods[j].WholeGPUs()
					}
				}
				return r
			}
		}
	}
	r.stoppedAt = "none (trace ended)"
	r.submitted = len(pods)
	return r
}

type podState int

const (
	undecided podState = iota
	bound
	unschedulable
)

// waitDecided waits until pods 0..n-1 of the replay are bound or unschedulable, and returns their states.
func waitDecided(t *testing.T, cs kubernetes.Interface, ns string, n int) []podState {
	t.Helper()
	states := make([]podState, n)
	clustertest.Poll(t, 10*time.Minute, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, nil
		}
		decided := 0
		for i := range l.Items {
			p := &l.Items[i]
			var idx int
			if _, err := fmt.Sscanf(p.Name, "p%06d", &idx); err != nil || idx >= n {
				continue
			}
			states[idx] = undecided
			if p.Spec.NodeName != "" {
				states[idx] = bound
			} else {
				for _, c := range p.Status.Conditions {
					if c.Type == v1.PodScheduled && c.Status == v1.ConditionFalse {
						states[idx] = unschedulable
					}
				}
			}
			if states[idx] != undecided {
				decided++
			}
		}
		return decided == n, nil
	})
	return states
}

func replayPod(i int, p Pod, profile string) *v1.Pod {
	req := v1.ResourceList{
		v1.ResourceCPU:    *resource.NewMilliQuantity(p.MilliCPU, resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(p.MemoryMiB<<20, resource.BinarySI),
	}
	var lim v1.ResourceList
	if g := p.WholeGPUs(); g > 0 {
		req[localcluster.GPUResource] = *resource.NewQuantity(g, resource.DecimalSI)
		lim = v1.ResourceList{localcluster.GPUResource: *resource.NewQuantity(g, resource.DecimalSI)}
	}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%06d", i), Labels: map[string]string{"trace-name": p.Name}},
		Spec: v1.PodSpec{
			SchedulerName:                 profile,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers:                    []v1.Container{{Name: "c", Image: "trace", Resources: v1.ResourceRequirements{Requests: req, Limits: lim}}},
		},
	}
	if len(p.Models) > 0 {
		pod.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
			NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{
				Key: localcluster.GPUModelLabel, Operator: v1.NodeSelectorOpIn, Values: p.Models,
			}}}},
		}}}
	}
	return pod
}
