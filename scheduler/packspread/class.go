package packspread

import (
	"slices"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	config "github.com/kubehtc/kubehtc/apis/config/v1alpha1"
)

// Classify returns the workload class of pod under args (defaulted), with the rules of PackSpreadArgs.
func Classify(pod *v1.Pod, args *config.PackSpreadArgs) config.WorkloadClass {
	switch c := config.WorkloadClass(pod.Labels[args.ClassLabel]); c {
	case config.ClassBatch, config.ClassService, config.ClassGPU:
		return c
	}
	if podGPUs(pod, v1.ResourceName(args.GPUResource)) > 0 {
		return config.ClassGPU
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		if slices.Contains(args.ServiceOwnerKinds, ref.Kind) {
			return config.ClassService
		}
		if slices.Contains(args.BatchOwnerKinds, ref.Kind) {
			return config.ClassBatch
		}
	}
	for _, k := range args.BatchLabels {
		if _, ok := pod.Labels[k]; ok {
			return config.ClassBatch
		}
	}
	return args.DefaultClass
}

// podGPUs is the number of GPUs the pod requests (the largest of its containers' sums, as the scheduler
// counts extended resources: requests, or limits when only limits are set).
func podGPUs(pod *v1.Pod, gpu v1.ResourceName) int64 {
	var sum, initMax int64
	get := func(c *v1.Container) int64 {
		if q, ok := c.Resources.Requests[gpu]; ok {
			return q.Value()
		}
		if q, ok := c.Resources.Limits[gpu]; ok {
			return q.Value()
		}
		return 0
	}
	for i := range pod.Spec.Containers {
		sum += get(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.InitContainers {
		initMax = max(initMax, get(&pod.Spec.InitContainers[i]))
	}
	return max(sum, initMax)
}
