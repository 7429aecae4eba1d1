package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Per-queue gauges; the label set is bounded by the number of Queue objects.
var (
	usageGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubehtc_queue_usage_core_equivalents",
		Help: "Current usage of the queue's subtree in core-equivalents (dominant resource of each running pod).",
	}, []string{"queue"})
	decayedGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubehtc_queue_decayed_usage_core_equivalents",
		Help: "Usage of the queue's subtree decayed with the half-life, in core-equivalents.",
	}, []string{"queue"})
	shareGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubehtc_queue_share",
		Help: "The queue's fraction of the capacity by weights (children sum to their parent).",
	}, []string{"queue"})
	targetGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubehtc_queue_target_core_equivalents",
		Help: "The queue's entitlement in core-equivalents (share of the capacity, at least its guarantee).",
	}, []string{"queue"})
	pendingGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubehtc_queue_pending_pods",
		Help: "Pods of the queue's subtree not yet bound to a node.",
	}, []string{"queue"})
	capacityGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kubehtc_fairshare_capacity_core_equivalents",
		Help: "Capacity the queues divide: allocatable of the nodes minus requests of running pods outside any queue.",
	})
	accountingsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubehtc_quota_accountings_total",
		Help: "Accounting intervals run by the quota controller, by result.",
	}, []string{"result"})
)

func init() {
	metrics.Registry.MustRegister(usageGauge, decayedGauge, shareGauge, targetGauge, pendingGauge, capacityGauge, accountingsTotal)
}
