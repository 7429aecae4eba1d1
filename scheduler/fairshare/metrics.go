package fairshare

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	internal "github.com/kubehtc/kubehtc/scheduler/internal/fairshare"
)

// Scheduler-side view of the queues (label sets bounded by the number of Queues and two reasons). The quota
// controller exports the accounted figures as kubehtc_queue_*; these are what the scheduler decides on.
var (
	usageGauge = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "kubehtc_scheduler_queue_usage_core_equivalents",
		Help:           "Usage of the queue's subtree in core-equivalents as the scheduler sees it (bound and reserved pods).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"queue"})
	decayedGauge = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "kubehtc_scheduler_queue_decayed_usage_core_equivalents",
		Help:           "Decayed usage of the queue's subtree: Queue status projected to now with live usage.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"queue"})
	shareGauge = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "kubehtc_scheduler_queue_share",
		Help:           "The queue's fraction of the capacity by weights.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"queue"})
	pendingGauge = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "kubehtc_scheduler_queue_pending_pods",
		Help:           "Pods of the queue (its leaf namespaces) not bound to a node.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"queue"})
	rejections = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "kubehtc_scheduler_queue_rejections_total",
		Help:           "Pods the FairShare plugin rejected, by the queue that would exceed and reason (limit, cap).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"queue", "reason"})
	reclaimVictims = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "kubehtc_scheduler_reclaim_victims_total",
		Help:           "Pods preempted by fair-share reclaim, by the queue they belonged to.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"queue"})
	registerOnce sync.Once
	startOnce    sync.Once
)

// metricsInterval is how often the gauges are recomputed.
const metricsInterval = 15 * time.Second

func startMetrics(ctx context.Context, v internal.View, f informers.SharedInformerFactory) {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(usageGauge, decayedGauge, shareGauge, pendingGauge, rejections, reclaimVictims)
	})
	if f == nil {
		return
	}
	pods := f.Core().V1().Pods().Lister()
	startOnce.Do(func() {
		go func() {
			t := time.NewTicker(metricsInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				updateGauges(v, pods.List)
			}
		}()
	})
}

func updateGauges(v internal.View, list func(labels.Selector) ([]*v1.Pod, error)) {
	tree, _, err := v.State()
	if err != nil {
		return
	}
	pending := map[string]int{}
	if all, err := list(labels.Everything()); err == nil {
		for _, p := range all {
			if p.Spec.NodeName == "" {
				if leaf := tree.Node(v.LeafOf(p.Namespace)); leaf != nil {
					for x := leaf; x != nil; x = x.Parent {
						pending[x.Name]++
					}
				}
			}
		}
	}
	usageGauge.Reset()
	decayedGauge.Reset()
	shareGauge.Reset()
	pendingGauge.Reset()
	for _, n := range tree.Nodes() {
		usageGauge.WithLabelValues(n.Name).Set(n.Usage)
		decayedGauge.WithLabelValues(n.Name).Set(n.Decayed)
		shareGauge.WithLabelValues(n.Name).Set(n.Share)
		pendingGauge.WithLabelValues(n.Name).Set(float64(pending[n.Name]))
	}
}
