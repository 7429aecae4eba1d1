// Package scheduler is kubehtc-scheduler: the real kube-scheduler with kubehtc's plugins registered.
//
// The plugins live in sub-packages (one per plugin: scoring by workload class, gang, fair-share order,
// quota); this package only lists them (Registry) and carries the scheduler configuration that defines the
// `kubehtc` profile (Config). cmd/kubehtc-scheduler and the local cluster both use these two, so the binary
// and the embedded cluster schedule identically.
package scheduler
