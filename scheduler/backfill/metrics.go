package backfill

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	reservationsGauge = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "kubehtc_scheduler_reservations",
		Help:           "Big jobs holding a reservation (a future placement computed from walltimes).",
		StabilityLevel: metrics.ALPHA,
	})
	reservationsCreated = metrics.NewCounter(&metrics.CounterOpts{
		Name:           "kubehtc_scheduler_reservations_created_total",
		Help:           "Reservations made for big jobs that could not start.",
		StabilityLevel: metrics.ALPHA,
	})
	backfilledPods = metrics.NewCounter(&metrics.CounterOpts{
		Name:           "kubehtc_scheduler_backfilled_pods_total",
		Help:           "Pods placed on a node reserved for another job, ending before the reservation starts.",
		StabilityLevel: metrics.ALPHA,
	})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(reservationsGauge, reservationsCreated, backfilledPods)
	})
}
