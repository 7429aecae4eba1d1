// Package podgroup holds what the scheduler plugins share about gangs: which PodGroup
// (scheduling.x-k8s.io/v1alpha1, the API of scheduler-plugins and Kubeflow's training operators) a pod belongs
// to, and a lister of PodGroups fed by an informer registered in the scheduler's informer factory.
package podgroup

import (
	v1 "k8s.io/api/core/v1"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"
)

// Label is the pod label that names the pod's PodGroup in the pod's namespace.
const Label = schedv1alpha1.PodGroupLabel

// Key returns "namespace/name" of the pod's PodGroup and whether the pod belongs to one.
func Key(pod *v1.Pod) (string, bool) {
	name := pod.Labels[Label]
	if name == "" {
		return "", false
	}
	return pod.Namespace + "/" + name, true
}

// Name returns the name of the pod's PodGroup ("" if none).
func Name(pod *v1.Pod) string { return pod.Labels[Label] }
