package packspread

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/scheduler/internal/gpufrag"
)

// Fragmentation describes how usable the free GPUs of a cluster are.
type Fragmentation struct {
	// Capacity is the number of GPUs of all nodes; Free those no pod requests.
	Capacity, Free int64
	// Fragmented are free GPUs on nodes that cannot host the reference request: a node's free GPUs are
	// fragmented when fewer than min(request, node's GPUs) are free. An empty 2-GPU node is not fragmented;
	// one free GPU on an 8-GPU node is.
	Fragmented int64
}

// GPUFragmentation measures the free and fragmented GPUs of nodes given the pods bound to them (pods that
// have finished hold nothing).
func GPUFragmentation(nodes []*v1.Node, pods []*v1.Pod, gpu v1.ResourceName, request int64) Fragmentation {
	usedOn := map[string]int64{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		usedOn[p.Spec.NodeName] += podGPUs(p, gpu)
	}
	var f Fragmentation
	for _, n := range nodes {
		q, ok := n.Status.Allocatable[gpu]
		if !ok || q.Value() <= 0 {
			continue
		}
		total := q.Value()
		free := max(total-usedOn[n.Name], 0)
		f.Capacity += total
		f.Free += free
		if free < min(request, total) {
			f.Fragmented += free
		}
	}
	return f
}

// ExpectedFragmentation is the cluster's expected fragmentation (scheduler/internal/gpufrag): the sum over GPU
// nodes of their free GPUs weighted by the share of the GPU pod classes that could not use them, given the
// pods bound to them (pods that have finished hold nothing).
func ExpectedFragmentation(nodes []*v1.Node, pods []*v1.Pod, gpu v1.ResourceName, classes []gpufrag.Class) float64 {
	type use struct{ gpus, cpu, mem int64 }
	usedOn := map[string]use{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		s := podShape(p, gpu)
		u := usedOn[p.Spec.NodeName]
		usedOn[p.Spec.NodeName] = use{u.gpus + s.GPUs, u.cpu + s.MilliCPU, u.mem + s.Memory}
	}
	total := 0.0
	for _, n := range nodes {
		q, ok := n.Status.Allocatable[gpu]
		if !ok || q.Value() <= 0 {
			continue
		}
		u := usedOn[n.Name]
		a := n.Status.Allocatable
		total += gpufrag.Expected(gpufrag.Node{GPUs: q.Value() - u.gpus, MilliCPU: a.Cpu().MilliValue() - u.cpu,
			Memory: a.Memory().Value() - u.mem, Model: n.Labels[gpufrag.ModelLabel]}, classes)
	}
	return total
}

var (
	gpuExpectedGauge = metrics.NewGauge(&metrics.GaugeOpts{
		Name: "kubehtc_gpu_expected_fragmented_gpus",
		Help: "Expected fragmented GPUs: free GPUs weighted by the share of the GPU pods seen so far that could not use them " +
			"(too few GPUs, CPU or memory left beside them, or a GPU model they do not accept; FGD, ATC'23).",
		StabilityLevel: metrics.ALPHA,
	})
	gpuFreeGauge = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "kubehtc_gpu_free_gpus",
		Help:           "GPUs on nodes that no non-terminated pod requests.",
		StabilityLevel: metrics.ALPHA,
	})
	gpuFragmentedGauge = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "kubehtc_gpu_fragmented_gpus",
		Help:           "Free GPUs on nodes that cannot host the reference GPU request (PackSpreadArgs.fragmentationGPURequest, capped at the node's GPUs).",
		StabilityLevel: metrics.ALPHA,
	})
	registerOnce sync.Once
	startOnce    sync.Once
)

// fragmentationInterval is how often the metric is recomputed from the informer caches.
const fragmentationInterval = 15 * time.Second

// startFragmentationMetric recomputes the GPU gauges from the scheduler's informer caches every
// fragmentationInterval until ctx ends. Several profiles share one updater.
func startFragmentationMetric(ctx context.Context, f informers.SharedInformerFactory, gpu v1.ResourceName, request int64, dist *gpufrag.Distribution) {
	registerOnce.Do(func() { legacyregistry.MustRegister(gpuFreeGauge, gpuFragmentedGauge, gpuExpectedGauge) })
	nodeLister := f.Core().V1().Nodes().Lister()
	podLister := f.Core().V1().Pods().Lister()
	startOnce.Do(func() {
		go func() {
			t := time.NewTicker(fragmentationInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				nodes, err := nodeLister.List(labels.Everything())
				if err != nil {
					klog.FromContext(ctx).V(2).Info("GPU fragmentation: listing nodes", "err", err)
					continue
				}
				pods, err := podLister.List(labels.Everything())
				if err != nil {
					klog.FromContext(ctx).V(2).Info("GPU fragmentation: listing pods", "err", err)
					continue
				}
				fr := GPUFragmentation(nodes, pods, gpu, request)
				gpuFreeGauge.Set(float64(fr.Free))
				gpuFragmentedGauge.Set(float64(fr.Fragmented))
				gpuExpectedGauge.Set(ExpectedFragmentation(nodes, pods, gpu, dist.Classes()))
			}
		}()
	})
}
