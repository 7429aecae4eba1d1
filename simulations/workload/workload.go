// Package workload turns a scenario's sources (SWF logs, the Alibaba openb trace, generators for a site's day)
// into one list of simulated pods in arrival order, and a simulated pod into the Pod object a runner submits.
// It is the same for every profile and both runners: identical input, only the scheduler differs.
package workload

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/simulations/alibaba"
	"github.com/kubehtc/kubehtc/simulations/scenario"
	"github.com/kubehtc/kubehtc/simulations/swf"
)

// ClassLabel is the workload-class label kubehtc's PackSpread plugin reads.
const ClassLabel = kubehtcv1alpha1.ClassLabel

// PodGroupLabel names a pod's PodGroup; the Gang plugin reads it.
const PodGroupLabel = schedv1alpha1.PodGroupLabel

// Pod is one simulated pod.
type Pod struct {
	// Name is unique in the run.
	Name string
	// Queue is the pod's fair-share queue and namespace.
	Queue string
	// Class is the generator class or source ("pilot", "batch", "gpu"...), used for per-class metrics.
	Class string
	// Label is the kubehtc.io/class label: batch, service or gpu.
	Label string
	// Arrival is when the pod is submitted, from the start of the run.
	Arrival time.Duration
	// Runtime is how long it runs once bound; 0 means until the end of the run.
	Runtime time.Duration
	// MilliCPU, MemoryBytes and GPUs are the requests.
	MilliCPU, MemoryBytes, GPUs int64
	// GPUModels restrict the pod to nodes with one of these GPU models (nvidia.com/gpu.product); empty: any.
	GPUModels []string
	// Gang is the pod's PodGroup name ("" if none) and GangSize its minMember.
	Gang     string
	GangSize int
	// Owner groups the replicas of a service.
	Owner string
}

// Set is a scenario's workload and cluster.
type Set struct {
	// Pods in arrival order (stable: sources in file order).
	Pods []Pod
	// Pools is the cluster, with the Alibaba node list's pools added.
	Pools localcluster.NodePoolsConfig
	// Skipped counts input records left out, by source and reason.
	Skipped map[string]int
}

// Build reads and generates the scenario's workload.
func Build(s *scenario.Scenario) (*Set, error) {
	set := &Set{Pools: localcluster.NodePoolsConfig{Pools: append([]localcluster.NodePool(nil), s.Cluster.Pools...)}, Skipped: map[string]int{}}
	if s.Cluster.AlibabaNodes != "" {
		nodes, err := readAlibabaNodes(s.Resolve(s.Cluster.AlibabaNodes))
		if err != nil {
			return nil, fmt.Errorf("cluster.alibabaNodes: %w", err)
		}
		set.Pools.Pools = append(set.Pools.Pools, alibaba.NodePools(nodes).Pools...)
	}
	for i, w := range s.Workloads {
		f := fmt.Sprintf("workloads[%d]", i)
		var (
			pods []Pod
			err  error
		)
		switch {
		case w.SWF != nil:
			pods, err = fromSWF(s, w.SWF, f, set.Skipped)
		case w.Alibaba != nil:
			pods, err = fromAlibaba(s, w.Alibaba, f)
		case w.Generate != nil:
			pods = generate(w.Generate, f, s.Seed+uint64(i), s.DurationOrZero())
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		set.Pods = append(set.Pods, pods...)
	}
	sort.SliceStable(set.Pods, func(i, j int) bool { return set.Pods[i].Arrival < set.Pods[j].Arrival })
	return set, nil
}

func fromSWF(s *scenario.Scenario, src *scenario.SWF, f string, skipped map[string]int) ([]Pod, error) {
	file, err := os.Open(s.Resolve(src.Path))
	if err != nil {
		return nil, err
	}
	defer file.Close()
	log, err := swf.Parse(file)
	if err != nil {
		return nil, err
	}
	for reason, n := range log.Skipped {
		skipped[f+": "+reason] += n
	}
	cpu := resource.MustParse(src.CPUPerProcessor)
	mem := resource.MustParse(src.MemoryPerProcessor)
	jobs := log.Jobs
	if src.MaxJobs > 0 && len(jobs) > src.MaxJobs {
		jobs = jobs[:src.MaxJobs]
	}
	pods := make([]Pod, 0, len(jobs))
	for _, j := range jobs {
		memPer := mem.Value()
		if j.MemoryKB > 0 {
			memPer = j.MemoryKB * 1024
		}
		queue := "swf"
		switch src.QueueBy {
		case "user":
			queue = fmt.Sprintf("u%d", j.User)
		case "group":
			queue = fmt.Sprintf("g%d", j.Group)
		case "queue":
			queue = fmt.Sprintf("q%d", j.Queue)
		}
		pods = append(pods, Pod{
			Name:        fmt.Sprintf("swf-%d", j.ID),
			Queue:       queue,
			Class:       src.Class,
			Label:       src.Class,
			Arrival:     time.Duration(j.Submit) * time.Second,
			Runtime:     time.Duration(j.RunTime) * time.Second,
			MilliCPU:    j.Processors * cpu.MilliValue(),
			MemoryBytes: j.Processors * memPer,
		})
	}
	return pods, nil
}

func readAlibabaNodes(path string) ([]alibaba.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return alibaba.ParseNodes(f)
}

// fromAlibaba maps openb pods: a fractional GPU share (gpu_milli < 1000) requests one whole GPU, since
// Kubernetes' device plugins allocate whole devices; gpu_spec becomes a required node affinity on the GPU model.
func fromAlibaba(s *scenario.Scenario, src *scenario.Alibaba, f string) ([]Pod, error) {
	file, err := os.Open(s.Resolve(src.Pods))
	if err != nil {
		return nil, err
	}
	defer file.Close()
	ps, err := alibaba.ParsePods(file)
	if err != nil {
		return nil, err
	}
	if src.MaxPods > 0 && len(ps) > src.MaxPods {
		ps = ps[:src.MaxPods]
	}
	pods := make([]Pod, 0, len(ps))
	for i, p := range ps {
		class := "cpu"
		if p.WholeGPUs() > 0 {
			class = "gpu"
		}
		pods = append(pods, Pod{
			Name:  fmt.Sprintf("openb-%d", i),
			Queue: "openb",
			Class: class,
			Label: map[bool]string{true: "gpu", false: "batch"}[class == "gpu"],
			// Pods arrive in creation order, one simulated second apart: the replay fills the cluster, it
			// does not follow the trace's clock.
			Arrival:     time.Duration(i) * time.Second,
			MilliCPU:    p.MilliCPU,
			MemoryBytes: p.MemoryMiB << 20,
			GPUs:        p.WholeGPUs(),
			GPUModels:   p.Models,
		})
	}
	return pods, nil
}

// generate makes a generator's pods; arrivals are exponentially distributed with mean Every.
func generate(g *scenario.Generator, f string, seed uint64, duration time.Duration) []Pod {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	cpu, mem := resource.MustParse(g.CPU), resource.MustParse(g.Memory)
	base := Pod{
		Queue:       g.Queue,
		Class:       g.Class,
		Label:       "batch",
		MilliCPU:    cpu.MilliValue(),
		MemoryBytes: mem.Value(),
		GPUs:        int64(g.GPUs),
	}
	if g.GPUs > 0 {
		base.Label = "gpu"
	}
	if g.Class == scenario.ClassService {
		base.Label = "service"
	}
	runtime := func() time.Duration {
		if g.RuntimeJitter == 0 {
			return g.Runtime.Duration
		}
		return time.Duration(float64(g.Runtime.Duration) * (1 - g.RuntimeJitter + 2*g.RuntimeJitter*rng.Float64())).Round(time.Second)
	}
	var pods []Pod
	t := g.Start.Duration
	for i := range g.Count {
		if i > 0 && g.Every.Duration > 0 {
			t += time.Duration(rng.ExpFloat64() * float64(g.Every.Duration)).Round(time.Second)
		}
		name := fmt.Sprintf("%s-%s-%s-%d", g.Queue, g.Class, f[len("workloads["):len(f)-1], i)
		switch g.Class {
		case scenario.ClassGang:
			r := runtime()
			for m := range g.Members {
				p := base
				p.Name, p.Arrival, p.Runtime, p.Gang, p.GangSize = fmt.Sprintf("%s-%d", name, m), t, r, name, g.Members
				pods = append(pods, p)
			}
		case scenario.ClassService:
			for r := range g.Replicas {
				for k, w := range serviceWindows(g, r, t, duration) {
					p := base
					p.Name, p.Owner, p.Arrival, p.Runtime = fmt.Sprintf("%s-%d-%d", name, r, k), name, w[0], w[1]-w[0]
					pods = append(pods, p)
				}
			}
		default:
			p := base
			p.Name, p.Arrival, p.Runtime = name, t, runtime()
			pods = append(pods, p)
		}
	}
	return pods
}

// serviceWindows returns the [start, end) intervals in which replica r of a service runs. Without Diurnal it
// runs from start to the end of the run. With Diurnal the wanted replica count follows
// R/3 + 2R/3·(1-cos θ)/2, θ = 2π(t-04:00)/24h: R/3 at 04:00, R at 16:00; replica r runs while the count
// exceeds r.
func serviceWindows(g *scenario.Generator, r int, start, duration time.Duration) [][2]time.Duration {
	if !g.Diurnal {
		return [][2]time.Duration{{start, duration}}
	}
	R := float64(g.Replicas)
	if float64(r) < R/3 {
		return [][2]time.Duration{{start, duration}}
	}
	x := (float64(r) - R/3) / (2 * R / 3)
	a := math.Acos(1 - 2*x) // the curve exceeds r for θ in (a, 2π-a)
	day := 24 * time.Hour
	var out [][2]time.Duration
	for d := -1; time.Duration(d)*day < duration; d++ {
		origin := 4*time.Hour + time.Duration(d)*day
		from := origin + time.Duration(a/(2*math.Pi)*float64(day))
		to := origin + time.Duration((2*math.Pi-a)/(2*math.Pi)*float64(day))
		from, to = max(from, start), min(to, duration)
		if to > from {
			out = append(out, [2]time.Duration{from.Round(time.Second), to.Round(time.Second)})
		}
	}
	return out
}

// Object is the Pod a runner submits for p on profile: namespace = queue, requests, class label, gang label,
// GPU-model affinity and the local cluster's runtime annotation (scaled by compression, for cluster mode).
func (p Pod) Object(profile string, compression float64) *v1.Pod {
	req := v1.ResourceList{
		v1.ResourceCPU:    *resource.NewMilliQuantity(p.MilliCPU, resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(p.MemoryBytes, resource.BinarySI),
	}
	if p.GPUs > 0 {
		req[localcluster.GPUResource] = *resource.NewQuantity(p.GPUs, resource.DecimalSI)
	}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      p.Name,
			Namespace: p.Queue,
			UID:       types.UID(p.Queue + "/" + p.Name),
			Labels:    map[string]string{ClassLabel: p.Label},
		},
		Spec: v1.PodSpec{
			SchedulerName: profile,
			Containers:    []v1.Container{{Name: "job", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{Requests: req, Limits: gpuLimits(p)}}},
		},
	}
	if p.Runtime > 0 {
		pod.Annotations = map[string]string{localcluster.RuntimeAnnotation: time.Duration(float64(p.Runtime) / compression).String()}
	}
	if p.Gang != "" {
		pod.Labels[PodGroupLabel] = p.Gang
	}
	if p.Owner != "" {
		pod.Labels["app"] = p.Owner
	}
	if len(p.GPUModels) > 0 {
		pod.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
			NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{
				Key: localcluster.GPUModelLabel, Operator: v1.NodeSelectorOpIn, Values: p.GPUModels,
			}}}},
		}}}
	}
	return pod
}

// gpuLimits repeats the GPU request as a limit: extended resources must have equal requests and limits.
func gpuLimits(p Pod) v1.ResourceList {
	if p.GPUs == 0 {
		return nil
	}
	return v1.ResourceList{localcluster.GPUResource: *resource.NewQuantity(p.GPUs, resource.DecimalSI)}
}
