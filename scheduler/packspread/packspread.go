package packspread

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	config "github.com/kubehtc/kubehtc/apis/config/v1alpha1"
	"github.com/kubehtc/kubehtc/scheduler/internal/gpufrag"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "PackSpread"

// stateKey is where PreScore leaves what Score needs.
const stateKey fwk.StateKey = Name + "/prescore"

// PackSpread scores nodes by the pod's workload class: pack batch, spread services, best-fit GPUs.
type PackSpread struct {
	handle fwk.Handle
	args   *config.PackSpreadArgs
	gpu    v1.ResourceName
	// cpuWeight and memWeight weigh the allocation fractions; weightSum is their sum (> 0 by validation).
	cpuWeight, memWeight, weightSum int64
	// dist is the running distribution of GPU pod shapes seen by this profile (PreEnqueue), which the
	// fragmentation score weighs.
	dist *gpufrag.Distribution
}

var (
	_ fwk.PreScorePlugin = &PackSpread{}
	_ fwk.ScorePlugin    = &PackSpread{}
)

// New builds the plugin from its args (see config.PackSpreadArgs) and starts the fragmentation metric.
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := config.DecodePackSpreadArgs(obj)
	if err != nil {
		return nil, err
	}
	pl := &PackSpread{
		handle:    h,
		args:      args,
		gpu:       v1.ResourceName(args.GPUResource),
		cpuWeight: args.ResourceWeights["cpu"],
		memWeight: args.ResourceWeights["memory"],
		dist:      gpufrag.NewDistribution(),
	}
	pl.weightSum = pl.cpuWeight + pl.memWeight
	if f := h.SharedInformerFactory(); f != nil {
		startFragmentationMetric(ctx, f, pl.gpu, args.FragmentationGPURequest, pl.dist)
	}
	return pl, nil
}

// Name returns the plugin's name.
func (pl *PackSpread) Name() string { return Name }

// preScoreState is the per-pod data of one scheduling cycle. It is read-only after PreScore.
type preScoreState struct {
	class    config.WorkloadClass
	milliCPU int64
	memory   int64
	gpus     int64
	// For services: replicas of the same owner per node name and per zone.
	ownerOnNode map[string]int
	ownerInZone map[string]int
	// For GPU pods (fragmentation): the pod's shape and the distribution's classes at PreScore.
	fragmentation bool
	shape         gpufrag.Shape
	classes       []gpufrag.Class
}

// Clone returns the state itself: it is not modified after PreScore.
func (s *preScoreState) Clone() fwk.StateData { return s }

// PreScore classifies the pod, sums its requests and, for a service, counts its owner's replicas per node and
// zone over the whole snapshot (not only the feasible nodes: a zone's count includes its full nodes).
func (pl *PackSpread) PreScore(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo) *fwk.Status {
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	s := &preScoreState{
		class:    Classify(pod, pl.args),
		milliCPU: req.Cpu().MilliValue(),
		memory:   req.Memory().Value(),
		gpus:     podGPUs(pod, pl.gpu),
	}
	if usesFragmentation(s.class, s.gpus) {
		// The pod itself counts (PreEnqueue may not be enabled, e.g. in a profile that only scores).
		pl.observe(pod)
		s.fragmentation, s.shape, s.classes = true, podShape(pod, pl.gpu), pl.dist.Classes()
	}
	if s.class == config.ClassService {
		if owner := metav1.GetControllerOf(pod); owner != nil {
			all, err := pl.handle.SnapshotSharedLister().NodeInfos().List()
			if err != nil {
				return fwk.AsStatus(fmt.Errorf("listing nodes: %w", err))
			}
			s.ownerOnNode, s.ownerInZone = countOwnerReplicas(all, pod.Namespace, owner.UID)
		}
	}
	cs.Write(stateKey, s)
	klog.FromContext(ctx).V(5).Info("PackSpread class", "pod", klog.KObj(pod), "class", s.class, "gpus", s.gpus)
	return nil
}

// countOwnerReplicas counts the pods controlled by owner (in namespace ns) per node and per zone. It runs
// once per service pod over every pod of the snapshot, so it avoids allocating.
func countOwnerReplicas(nodes []fwk.NodeInfo, ns string, owner types.UID) (onNode, inZone map[string]int) {
	onNode, inZone = map[string]int{}, map[string]int{}
	for _, ni := range nodes {
		n := 0
		for _, pi := range ni.GetPods() {
			p := pi.GetPod()
			if p.Namespace != ns {
				continue
			}
			for i := range p.OwnerReferences {
				if ref := &p.OwnerReferences[i]; ref.UID == owner && ref.Controller != nil && *ref.Controller {
					n++
					break
				}
			}
		}
		if n == 0 {
			continue
		}
		node := ni.Node()
		onNode[node.Name] += n
		if z := node.Labels[v1.LabelTopologyZone]; z != "" {
			inZone[z] += n
		}
	}
	return onNode, inZone
}

// Score returns 0-100 for the node; see the package doc for the rules by class.
func (pl *PackSpread) Score(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, nodeInfo fwk.NodeInfo) (int64, *fwk.Status) {
	data, err := cs.Read(stateKey)
	if err != nil {
		return 0, fwk.AsStatus(fmt.Errorf("reading %q from cycle state: %w", stateKey, err))
	}
	s, ok := data.(*preScoreState)
	if !ok {
		return 0, fwk.AsStatus(fmt.Errorf("%q has type %T", stateKey, data))
	}
	alloc, used := nodeInfo.GetAllocatable(), nodeInfo.GetRequested()
	nodeGPUs := alloc.GetScalarResources()[pl.gpu]

	var score int64
	switch {
	case s.fragmentation:
		// Raw, normalised in NormalizeScore.
		return pl.gpuFragmentation(s, nodeInfo, alloc, used, nodeGPUs), nil
	case s.class == config.ClassService:
		score = pl.serviceSpread(s, alloc, used, nodeInfo.Node())
	default: // batch, and gpu-class pods that request no GPU
		score = pl.allocatedAfter(s, alloc, used)
	}
	if s.gpus == 0 && s.class != config.ClassGPU {
		if nodeGPUs > 0 {
			// CPU-only pod on a GPU node: lose GPUNodePenalty percent.
			score = score * (100 - *pl.args.GPUNodePenalty) / 100
		} else {
			// On CPU nodes never 0, so that a full penalty puts every GPU node strictly below every CPU node.
			score = max(score, 1)
		}
	}
	return min(max(score, 0), fwk.MaxNodeScore), nil
}

// ScoreExtensions returns the plugin: GPU pods' fragmentation scores are normalised (NormalizeScore).
func (pl *PackSpread) ScoreExtensions() fwk.ScoreExtensions { return pl }

// allocatedAfter is the weighted fraction of cpu and memory allocated once the pod is placed, 0-100: the
// MostAllocated rule, so the node the pod fills best wins.
//
//	score = 100 * (wc*(usedCPU+podCPU)/allocCPU + wm*(usedMem+podMem)/allocMem) / (wc+wm)
func (pl *PackSpread) allocatedAfter(s *preScoreState, alloc, used fwk.Resource) int64 {
	return (pl.cpuWeight*fraction100(used.GetMilliCPU()+s.milliCPU, alloc.GetMilliCPU()) +
		pl.memWeight*fraction100(used.GetMemory()+s.memory, alloc.GetMemory())) / pl.weightSum
}

// fraction100 is 100*num/den clamped to [0, 100]; a resource the node does not have counts as full.
func fraction100(num, den int64) int64 {
	if den <= 0 {
		return 100
	}
	return min(max(num*100/den, 0), 100)
}

// serviceSpread favours nodes and zones without replicas of the pod's owner, then free nodes:
//
//	node = 100/(1+replicas on node), zone = 100/(1+replicas in zone) (100 for a node without zone),
//	free = 100 - allocatedAfter
//	score = (wn*node + wz*zone + wl*free) / (wn+wz+wl)
func (pl *PackSpread) serviceSpread(s *preScoreState, alloc, used fwk.Resource, node *v1.Node) int64 {
	nodeTerm, zoneTerm := int64(100), int64(100)
	if s.ownerOnNode != nil {
		nodeTerm = 100 / int64(1+s.ownerOnNode[node.Name])
		if z := node.Labels[v1.LabelTopologyZone]; z != "" {
			zoneTerm = 100 / int64(1+s.ownerInZone[z])
		}
	}
	free := 100 - pl.allocatedAfter(s, alloc, used)
	wn, wz, wl := *pl.args.NodeSpreadWeight, *pl.args.ZoneSpreadWeight, *pl.args.LeastAllocatedWeight
	return (wn*nodeTerm + wz*zoneTerm + wl*free) / (wn + wz + wl)
}

// gpuBestFit favours the node where the pod leaves the fewest free GPUs behind, so that free GPUs stay
// together on other nodes for large requests; cpu/memory packing breaks ties:
//
//	left = freeGPUs - podGPUs;  score = (9 * 100*(gpus-left)/gpus + allocatedAfter) / 10
//
// A node whose GPUs the pod fills exactly scores 90-100; an empty 8-GPU node for a 1-GPU pod scores about 11.
func (pl *PackSpread) gpuBestFit(s *preScoreState, alloc, used fwk.Resource, nodeGPUs int64) int64 {
	if nodeGPUs <= 0 {
		return 0
	}
	left := max(nodeGPUs-used.GetScalarResources()[pl.gpu]-s.gpus, 0)
	fit := 100 * (nodeGPUs - left) / nodeGPUs
	return (9*fit + pl.allocatedAfter(s, alloc, used)) / 10
}
