// Package gpufrag measures GPU fragmentation the way Weng et al. define it for FGD ("Beware of Fragmentation:
// Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC 2023, §3–4), adapted to
// Kubernetes' whole GPUs and to GPU-model constraints. The PackSpread plugin scores GPU pods with it, and the
// same plugin runs in the simulator's fast mode; the scheduler exports it as a metric.
//
// A node's free GPUs are fragmented for a class of pods when a pod of that class cannot run there: too few
// free GPUs, too little free CPU or memory beside them, or a GPU model the class does not accept (gpu_spec in
// the trace, required node affinity on nvidia.com/gpu.product in Kubernetes). The expected fragmentation of a
// node is the probability-weighted sum over the classes seen so far:
//
//	F(n) = Σ_c p_c · free_gpus(n) · [c does not fit n]
//
// and a placement is scored by how much it lowers F of its node (the fragmentation gradient): the paper's FGD
// picks the node where ΔF = F(after) − F(before) is smallest.
//
// Two things differ from the paper:
//
//   - Whole GPUs. The paper shares GPUs (gpu_milli < 1000) and counts, for a class that fits, the GPUs whose
//     free share is below the class's share as fragments (its "Q3" case). Kubernetes' device plugin hands out
//     whole devices, so a fractional request takes one GPU here: a class either fits (no fragment) or does not
//     (every free GPU is a fragment). The paper's main lever, packing fractional pods onto the same GPU, is
//     gone; what is left is the choice of node, which matters for multi-GPU pods, for CPU beside GPUs, and for
//     GPU models.
//   - Model constraints are part of the class. For a class that only accepts a scarce model, every free GPU
//     on other models counts as fragmented; a pod that could go anywhere therefore lowers F most on nodes the
//     constrained classes cannot use, and keeps the scarce models whole for the pods that need them.
//
// Classes without GPUs add p_c · free_gpus(n) on every node whatever the placement (the paper counts all idle
// GPUs as fragments for them too), which moves F by the same amount on every node: they do not change which
// node is best, so the distribution keeps GPU pods only.
package gpufrag

import (
	"slices"
	"strings"
)

// ModelLabel is the node label that names the GPU model (the one NVIDIA GPU feature discovery sets; the local
// cluster sets it on its GPU pools).
const ModelLabel = "nvidia.com/gpu.product"

// Shape is what a pod needs from one node.
type Shape struct {
	// GPUs are whole GPUs (a fractional share is one GPU).
	GPUs     int64
	MilliCPU int64
	Memory   int64
	// Models the pod accepts; empty means any.
	Models []string
}

// Node is what one node has free.
type Node struct {
	GPUs     int64
	MilliCPU int64
	Memory   int64
	// Model is the node's GPU model ("" when unlabelled; only unconstrained classes fit then).
	Model string
}

// Fits says whether a pod of shape s can run on n.
func (s Shape) Fits(n Node) bool {
	return s.GPUs <= n.GPUs && s.MilliCPU <= n.MilliCPU && s.Memory <= n.Memory &&
		(len(s.Models) == 0 || slices.Contains(s.Models, n.Model))
}

// Class is a shape with its share of the GPU pods seen.
type Class struct {
	Shape
	P float64
}

// Expected is F(n): the free GPUs of n, weighted by the share of the classes that cannot use them.
func Expected(n Node, classes []Class) float64 {
	if n.GPUs <= 0 {
		return 0
	}
	unfit := 0.0
	for i := range classes {
		if !classes[i].Fits(n) {
			unfit += classes[i].P
		}
	}
	return unfit * float64(n.GPUs)
}

// After is n once a pod of shape s runs on it.
func (n Node) After(s Shape) Node {
	return Node{GPUs: n.GPUs - s.GPUs, MilliCPU: n.MilliCPU - s.MilliCPU, Memory: n.Memory - s.Memory, Model: n.Model}
}

// Gain is F(n) − F(n after s): how many GPUs' worth of expected fragmentation the placement removes (negative
// when it fragments). FGD places the pod where Gain is largest.
func Gain(n Node, s Shape, classes []Class) float64 {
	return Expected(n, classes) - Expected(n.After(s), classes)
}

// modelsKey is a canonical form of a model list (sorted, deduplicated, "|"-joined).
func modelsKey(models []string) string {
	if len(models) == 0 {
		return ""
	}
	m := slices.Clone(models)
	slices.Sort(m)
	return strings.Join(slices.Compact(m), "|")
}
