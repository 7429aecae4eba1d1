package fairshare

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/quota/fairshare"
)

// Sim is the fair-share view of a simulation (scheduler/simframework): the same ranker as in the scheduler,
// fed directly by the simulation instead of by informers, on the simulation's virtual clock. Account plays
// the quota controller's accounting interval, so ranks decay with virtual time as they do in a cluster.
type Sim struct {
	r *ranker
}

// NewSim returns an empty view whose clock is now.
func NewSim(now func() time.Time) (*Sim, error) {
	r, err := emptyRanker(now)
	if err != nil {
		return nil, err
	}
	return &Sim{r: r}, nil
}

// View returns the view the plugins see (For returns it once Provide was called).
func (s *Sim) View() View { return s.r }

// SetQueue adds or replaces a Queue (spec and status).
func (s *Sim) SetQueue(q *kubehtcv1alpha1.Queue) { s.r.setQueue(q, true) }

// SetNamespace adds or replaces a namespace; its kubehtc.io/queue label puts its pods in a queue.
func (s *Sim) SetNamespace(ns *v1.Namespace) { s.r.setNamespace(ns, true) }

// SetNode adds or replaces a node: its allocatable is the capacity queues divide.
func (s *Sim) SetNode(n *v1.Node) { s.r.setNode(n, true) }

// SetPod records a pod as the scheduler's pod informer would see it: bound pods count as usage.
func (s *Sim) SetPod(pod *v1.Pod) { s.r.setPod(pod, true) }

// DeletePod forgets a pod (it finished).
func (s *Sim) DeletePod(pod *v1.Pod) { s.r.setPod(pod, false) }

// Provide makes For return s's view for every handle whose informer factory is f, instead of building a
// ranker that watches Queues. Call it before building the framework on f, and Release when done.
func Provide(f informers.SharedInformerFactory, s *Sim) {
	mu.Lock()
	defer mu.Unlock()
	rankers[any(f)] = s.r
}

// Release forgets the ranker of f.
func Release(f informers.SharedInformerFactory) {
	mu.Lock()
	defer mu.Unlock()
	delete(rankers, any(f))
}

// Account does what the quota controller does each accounting interval, at the virtual now: usage of the
// bound pods, decayed usage D ← β·D(status) + (1−β)·u with β = 0.5^(Δt/halfLife) (quota/fairshare.Decay),
// targets, shares and ranks, written into every Queue's status. It returns the root policy's accounting
// interval: when the next call is due. Without a valid queue tree it changes nothing.
func (s *Sim) Account() time.Duration {
	r := s.r
	r.mu.Lock()
	now := r.now()
	interval := r.policy.AccountingInterval
	t, err := r.build(now)
	if err != nil {
		r.mu.Unlock()
		return interval
	}
	running := map[string]map[string]int32{}
	for k, sums := range r.byUser {
		if leaf := r.leafOf[k.namespace]; leaf != "" && sums.pods > 0 {
			if running[leaf] == nil {
				running[leaf] = map[string]int32{}
			}
			running[leaf][k.user] += int32(sums.pods)
		}
	}
	updated := make([]*kubehtcv1alpha1.Queue, 0, len(t.Nodes()))
	for _, n := range t.Nodes() {
		q := r.queues[n.Name].DeepCopy()
		n.DecayFrom(&q.Status, now, t.Policy.HalfLife)
		updated = append(updated, q)
	}
	// The controller ranks after decaying, on the interval's figures.
	ranking := t.Rank()
	for _, q := range updated {
		fairshare.FillStatus(&q.Status, t.Node(q.Name), ranking, running[q.Name], now)
	}
	// Only status changed. setQueue on the root would recount every pod for a policy change (the policy is the
	// same), so the root's status is written in place; the leaves go through setQueue as informer updates do.
	for _, q := range updated {
		if q.Name == kubehtcv1alpha1.RootQueueName {
			r.queues[q.Name] = q
			r.dirty = true
		}
	}
	r.mu.Unlock()
	for _, q := range updated {
		if q.Name != kubehtcv1alpha1.RootQueueName {
			r.setQueue(q, true)
		}
	}
	return max(interval, time.Second)
}
