// Package localcluster runs a complete, real Kubernetes control plane inside one Go process: embedded etcd,
// kube-apiserver, the kube-controller-manager controllers that batch and web workloads need, kubehtc-scheduler
// (the real kube-scheduler with kubehtc's plugin registry) and KWOK simulating nodes and pod lifecycles.
//
// It is the runtime of `kubehtc up`, `kubehtc demo`, the integration tests, the benchmarks and the simulator.
// Feature gates, metrics registries and klog are process-global in Kubernetes, so a process runs at most one
// local cluster; tests start it once per package in TestMain.
//
// Simulated pods follow two annotations (see RuntimeAnnotation and ExitCodeAnnotation): a pod becomes Running
// once it is bound, and finishes after its runtime; a pod without a runtime runs until it is deleted, like a web
// service.
package localcluster
