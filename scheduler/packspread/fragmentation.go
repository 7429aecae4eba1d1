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

var (
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
func startFragmentationMetric(ctx context.Context, f informers.SharedInformerFactory, gpu v1.ResourceName, request int64) {
	registerOnce.Do(func() { legacyregistry.MustRegister(gpuFreeGauge, gpuFragmentedGauge) })
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
			}
		}()
	})
}
