package podgroup

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	fwk "k8s.io/kube-scheduler/framework"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"
)

// SimStore is a Store that a simulation (scheduler/simframework) feeds directly, instead of an informer
// watching an API server: the simulation adds PodGroups and pods as they are created, bound and finished, in
// its own (virtual) time and order, so gang decisions do not depend on informer timing.
type SimStore struct {
	*Store
	// now is the simulation's virtual clock; nil until SetClock.
	now func() time.Time
}

// NewSimStore returns an empty store for a simulation.
func NewSimStore() *SimStore {
	return &SimStore{Store: &Store{
		groups: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}),
		pods:   cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{memberIndex: indexByGroup}),
	}}
}

// SetClock makes now the clock of the gang plugins that use this store (see Clock).
func (s *SimStore) SetClock(now func() time.Time) { s.now = now }

// SetPodGroup adds or replaces a PodGroup.
func (s *SimStore) SetPodGroup(pg *schedv1alpha1.PodGroup) error { return s.groups.Update(pg) }

// DeletePodGroup removes a PodGroup.
func (s *SimStore) DeletePodGroup(pg *schedv1alpha1.PodGroup) error { return s.groups.Delete(pg) }

// SetPod adds or replaces a pod (pending or bound), as the scheduler's pod informer would see it.
func (s *SimStore) SetPod(pod *v1.Pod) error { return s.pods.Update(pod) }

// DeletePod removes a pod (it finished or was deleted).
func (s *SimStore) DeletePod(pod *v1.Pod) error { return s.pods.Delete(pod) }

// Provide makes For return s for every handle whose informer factory is f, instead of registering a PodGroup
// informer. Call it before building the framework on f, and Release when done.
func Provide(f informers.SharedInformerFactory, s *SimStore) {
	mu.Lock()
	defer mu.Unlock()
	stores[any(f)] = s.Store
	clocks[any(f)] = s
}

// Release forgets what For returned for f.
func Release(f informers.SharedInformerFactory) {
	mu.Lock()
	defer mu.Unlock()
	delete(stores, any(f))
	delete(clocks, any(f))
}

// clocks are the simulation stores by informer factory, for Clock.
var clocks = map[any]*SimStore{}

// Clock returns the clock the gang plugins of h's scheduler should use: the simulation's virtual clock when a
// SimStore with a clock was provided for h's informer factory, else time.Now.
func Clock(h fwk.Handle) func() time.Time {
	mu.Lock()
	defer mu.Unlock()
	if s := clocks[any(h.SharedInformerFactory())]; s != nil && s.now != nil {
		return s.now
	}
	return time.Now
}
