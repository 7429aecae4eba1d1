// Package workloadapi tests that Kubernetes' own gang scheduling — the scheduling.k8s.io Workload and PodGroup
// API behind the GenericWorkload feature gate, scheduled by the in-tree GangScheduling plugin — keeps working
// beside kubehtc's gang scheduling of scheduling.x-k8s.io PodGroups when the gate is on, and that ours keeps
// working too. The tests run on a local cluster started with the gate on; the package has no code of its own.
package workloadapi
