package fairshare

import (
	corev1 "k8s.io/api/core/v1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// QueueOf returns the leaf queue of a namespace's pods (label kubehtc.io/queue), "" for none.
func QueueOf(ns *corev1.Namespace) string {
	if ns == nil {
		return ""
	}
	return ns.Labels[kubehtcv1alpha1.QueueLabel]
}

// UserOf returns a pod's user inside its queue: the label kubehtc.io/user, else the namespace.
func UserOf(pod *corev1.Pod) string {
	if u := pod.Labels[kubehtcv1alpha1.UserLabel]; u != "" {
		return u
	}
	return pod.Namespace
}

// Holds reports whether a pod holds node resources: bound and not finished.
func Holds(pod *corev1.Pod) bool {
	return pod.Spec.NodeName != "" && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}
