package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkloadClass is how the PackSpread plugin places a pod.
type WorkloadClass string

// Workload classes.
const (
	// ClassBatch pods are packed: most-allocated, so whole nodes stay free for large jobs.
	ClassBatch WorkloadClass = "batch"
	// ClassService pods are spread: least-allocated, replicas of one owner on distinct nodes and zones.
	ClassService WorkloadClass = "service"
	// ClassGPU pods are packed onto GPU nodes by best fit, so that free GPUs stay together.
	ClassGPU WorkloadClass = "gpu"
)

// PackSpreadArgs configure the PackSpread score plugin.
//
// A pod's class is, in order: the value of ClassLabel; gpu if it requests GPUResource; service if its
// controller's kind is in ServiceOwnerKinds; batch if the controller's kind is in BatchOwnerKinds or the pod
// has one of BatchLabels; else DefaultClass.
type PackSpreadArgs struct {
	metav1.TypeMeta `json:",inline"`

	// ClassLabel is the pod label that names the class explicitly. Default kubehtc.io/class.
	// +optional
	ClassLabel string `json:"classLabel,omitempty"`
	// ServiceOwnerKinds are controller kinds whose pods are services. Default ReplicaSet, StatefulSet,
	// ReplicationController, DaemonSet (a Deployment's pods are owned by its ReplicaSet).
	// +optional
	ServiceOwnerKinds []string `json:"serviceOwnerKinds,omitempty"`
	// BatchOwnerKinds are controller kinds whose pods are batch. Default Job, GridJob.
	// +optional
	BatchOwnerKinds []string `json:"batchOwnerKinds,omitempty"`
	// BatchLabels are label keys that make a pod batch (gang members). Default scheduling.x-k8s.io/pod-group.
	// +optional
	BatchLabels []string `json:"batchLabels,omitempty"`
	// DefaultClass of pods no rule matches (bare pods). Default batch.
	// +optional
	DefaultClass WorkloadClass `json:"defaultClass,omitempty"`

	// GPUResource is the extended resource that counts GPUs. Default nvidia.com/gpu.
	// +optional
	GPUResource string `json:"gpuResource,omitempty"`
	// ResourceWeights weigh cpu and memory in the allocation fractions of batch and service scoring.
	// Default cpu: 1, memory: 1.
	// +optional
	ResourceWeights map[string]int64 `json:"resourceWeights,omitempty"`
	// GPUNodePenalty (0-100) is the share of the score a pod that requests no GPU loses on a node that has
	// GPUs. 100 (the default) scores GPU nodes 0 for CPU-only pods, below any CPU node that fits; it is a
	// score, not a filter, so GPU nodes still absorb CPU work when the CPU pools are full.
	// +optional
	GPUNodePenalty *int64 `json:"gpuNodePenalty,omitempty"`
	// Service scoring weighs: NodeSpreadWeight (no replica of the same owner on the node), ZoneSpreadWeight
	// (few replicas in the node's zone) and LeastAllocatedWeight. Defaults 4, 2, 1.
	// +optional
	NodeSpreadWeight *int64 `json:"nodeSpreadWeight,omitempty"`
	// +optional
	ZoneSpreadWeight *int64 `json:"zoneSpreadWeight,omitempty"`
	// +optional
	LeastAllocatedWeight *int64 `json:"leastAllocatedWeight,omitempty"`
	// FragmentationGPURequest is the GPU request the fragmentation metric measures against: free GPUs on a
	// node with fewer free than this are counted as fragmented. Default 8 (a whole 8-GPU node).
	// +optional
	FragmentationGPURequest int64 `json:"fragmentationGPURequest,omitempty"`
}
