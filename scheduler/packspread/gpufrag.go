package packspread

import (
	"context"
	"math"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	config "github.com/kubehtc/kubehtc/apis/config/v1alpha1"
	"github.com/kubehtc/kubehtc/scheduler/internal/gpufrag"
)

var (
	_ fwk.PreEnqueuePlugin = &PackSpread{}
	_ fwk.ScoreExtensions  = &PackSpread{}
)

// PreEnqueue never holds a pod back: it adds the pod's GPU shape to the running distribution the
// fragmentation score weighs (once per pod, however often it is requeued). It runs for every pod, also for
// those no node can take, which are the ones fragmentation hurts.
func (pl *PackSpread) PreEnqueue(ctx context.Context, pod *v1.Pod) *fwk.Status {
	pl.observe(pod)
	return nil
}

// observe adds pod to the distribution.
func (pl *PackSpread) observe(pod *v1.Pod) {
	if s := podShape(pod, pl.gpu); s.GPUs > 0 {
		pl.dist.Observe(string(pod.UID), s)
	}
}

// podShape is what pod needs from a node: whole GPUs, cpu, memory and the GPU models it accepts.
func podShape(pod *v1.Pod, gpu v1.ResourceName) gpufrag.Shape {
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	return gpufrag.Shape{GPUs: podGPUs(pod, gpu), MilliCPU: req.Cpu().MilliValue(), Memory: req.Memory().Value(), Models: podGPUModels(pod)}
}

// podGPUModels are the GPU models (node label nvidia.com/gpu.product) the pod accepts through its node selector
// or required node affinity; nil means any. Required terms are ORed, so the pod is constrained only when every
// term constrains the label; a node selector narrows further.
func podGPUModels(pod *v1.Pod) []string {
	var models []string
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		for _, t := range terms {
			constrained := false
			for _, e := range t.MatchExpressions {
				if e.Key == gpufrag.ModelLabel && e.Operator == v1.NodeSelectorOpIn {
					models = append(models, e.Values...)
					constrained = true
				}
			}
			if !constrained {
				models = nil
				break
			}
		}
	}
	if m, ok := pod.Spec.NodeSelector[gpufrag.ModelLabel]; ok {
		return []string{m}
	}
	return models
}

// freeOn is what nodeInfo has free, with its GPU model.
func (pl *PackSpread) freeOn(nodeInfo fwk.NodeInfo) gpufrag.Node {
	alloc, used := nodeInfo.GetAllocatable(), nodeInfo.GetRequested()
	return gpufrag.Node{
		GPUs:     alloc.GetScalarResources()[pl.gpu] - used.GetScalarResources()[pl.gpu],
		MilliCPU: alloc.GetMilliCPU() - used.GetMilliCPU(),
		Memory:   alloc.GetMemory() - used.GetMemory(),
		Model:    nodeInfo.Node().Labels[gpufrag.ModelLabel],
	}
}

// fgdScale separates the fragmentation gain (in thousandths of a GPU) from the best-fit tie-break (0-100).
const fgdScale = 128

// gpuFragmentation is the fragmentation-gradient score of a GPU pod on a node (see scheduler/internal/gpufrag):
//
//	raw = round(1000 × Gain) × 128 + gpuBestFit
//
// Gain is how many GPUs' worth of expected fragmentation, for the pods seen so far, the placement removes; among
// nodes of equal gain (e.g. before the distribution knows any other shape) the best GPU fit wins. NormalizeScore
// maps the raw scores of the feasible nodes onto 0-100.
func (pl *PackSpread) gpuFragmentation(s *preScoreState, nodeInfo fwk.NodeInfo, alloc, used fwk.Resource, nodeGPUs int64) int64 {
	gain := gpufrag.Gain(pl.freeOn(nodeInfo), s.shape, s.classes)
	return int64(math.Round(1000*gain))*fgdScale + pl.gpuBestFit(s, alloc, used, nodeGPUs)
}

// NormalizeScore maps a GPU pod's raw fragmentation scores onto [0, MaxNodeScore] (min-max over the feasible
// nodes: the best node scores 100, the worst 0); other classes' scores are already in range.
func (pl *PackSpread) NormalizeScore(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, scores fwk.NodeScoreList) *fwk.Status {
	data, err := cs.Read(stateKey)
	if err != nil {
		return fwk.AsStatus(err)
	}
	s, ok := data.(*preScoreState)
	if !ok || !s.fragmentation || len(scores) == 0 {
		return nil
	}
	lo, hi := scores[0].Score, scores[0].Score
	for _, ns := range scores {
		lo, hi = min(lo, ns.Score), max(hi, ns.Score)
	}
	for i := range scores {
		if hi == lo {
			scores[i].Score = fwk.MaxNodeScore
			continue
		}
		scores[i].Score = (scores[i].Score - lo) * fwk.MaxNodeScore / (hi - lo)
	}
	klog.FromContext(ctx).V(5).Info("PackSpread fragmentation scores", "pod", klog.KObj(pod), "classes", len(s.classes), "rawMin", lo, "rawMax", hi)
	return nil
}

// usesFragmentation says whether the pod is scored by the fragmentation gradient: a GPU-class pod that
// requests GPUs.
func usesFragmentation(class config.WorkloadClass, gpus int64) bool {
	return class == config.ClassGPU && gpus > 0
}
