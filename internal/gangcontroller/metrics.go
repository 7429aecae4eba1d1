package gangcontroller

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"
)

// phases are the values of the phase label, so that every phase is exported, zero included.
var phases = []schedv1alpha1.PodGroupPhase{
	schedv1alpha1.PodGroupPending,
	schedv1alpha1.PodGroupScheduling,
	schedv1alpha1.PodGroupRunning,
	schedv1alpha1.PodGroupFinished,
	schedv1alpha1.PodGroupFailed,
	schedv1alpha1.PodGroupUnknown,
}

// podGroups is kubehtc_podgroups: PodGroups by phase, on controller-runtime's registry (the manager's
// /metrics).
var podGroups = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "kubehtc_podgroups",
	Help: "Number of PodGroups (scheduling.x-k8s.io) by phase, as kubehtc-controller last computed it.",
}, []string{"phase"})

func init() {
	metrics.Registry.MustRegister(podGroups)
	for _, p := range phases {
		podGroups.WithLabelValues(string(p))
	}
}

// phaseGauge remembers each PodGroup's phase and keeps kubehtc_podgroups in step.
type phaseGauge struct {
	mu     sync.Mutex
	phases map[types.NamespacedName]schedv1alpha1.PodGroupPhase
}

func (g *phaseGauge) set(pg types.NamespacedName, p schedv1alpha1.PodGroupPhase) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok := g.phases[pg]
	if ok && old == p {
		return
	}
	if g.phases == nil {
		g.phases = map[types.NamespacedName]schedv1alpha1.PodGroupPhase{}
	}
	g.phases[pg] = p
	if ok {
		podGroups.WithLabelValues(string(old)).Dec()
	}
	podGroups.WithLabelValues(string(p)).Inc()
}

func (g *phaseGauge) forget(pg types.NamespacedName) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok := g.phases[pg]
	if !ok {
		return
	}
	delete(g.phases, pg)
	podGroups.WithLabelValues(string(old)).Dec()
}
