package podgroup

import (
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	fwk "k8s.io/kube-scheduler/framework"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	"github.com/kubehtc/kubehtc/scheduler/internal/crdinformer"
)

// EventResource is how the scheduler names PodGroup events in EventsToRegister (resource.version.group): the
// scheduler watches it with its dynamic informer factory.
const EventResource fwk.EventResource = "podgroups.v1alpha1.scheduling.x-k8s.io"

// memberIndex indexes the scheduler's pod informer by "namespace/podgroup".
const memberIndex = "kubehtc.io/pod-group"

// Store answers the gang plugins' questions from informers: a PodGroup by key, and a gang's live pods.
type Store struct {
	groups cache.Indexer
	pods   cache.Indexer
}

var (
	mu     sync.Mutex
	stores = map[any]*Store{}
)

// For returns the Store of the scheduler that h belongs to, registering (once per informer factory) a PodGroup
// informer and a gang index on the pod informer. It must be called from a plugin's New, before the scheduler
// starts its informers.
func For(h fwk.Handle) (*Store, error) {
	mu.Lock()
	defer mu.Unlock()
	f := h.SharedInformerFactory()
	if s, ok := stores[any(f)]; ok {
		return s, nil
	}
	groups, err := crdinformer.Register(f, h.KubeConfig(), crdinformer.Resource{
		Kind: "PodGroup", GroupVersion: schedv1alpha1.SchemeGroupVersion, Plural: "podgroups", AddToScheme: schedv1alpha1.AddToScheme,
		Object: &schedv1alpha1.PodGroup{}, NewList: func() runtime.Object { return &schedv1alpha1.PodGroupList{} },
		Indexers: cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
	})
	if err != nil {
		return nil, fmt.Errorf("podgroup: %w", err)
	}
	pods := f.Core().V1().Pods().Informer()
	if _, exists := pods.GetIndexer().GetIndexers()[memberIndex]; !exists {
		if err := pods.AddIndexers(cache.Indexers{memberIndex: indexByGroup}); err != nil {
			return nil, fmt.Errorf("podgroup: indexing pods by gang: %w", err)
		}
	}
	s := &Store{groups: groups.GetIndexer(), pods: pods.GetIndexer()}
	stores[any(f)] = s
	return s, nil
}

// Get returns the PodGroup namespace/name, or nil if the informer does not have it.
func (s *Store) Get(key string) *schedv1alpha1.PodGroup {
	obj, ok, err := s.groups.GetByKey(key)
	if err != nil || !ok {
		return nil
	}
	pg, _ := obj.(*schedv1alpha1.PodGroup)
	return pg
}

// Members returns the live (not terminal, not being deleted) pods of the gang key, as the scheduler's informer
// sees them; the slice is new, the pods are shared and must not be modified.
func (s *Store) Members(key string) []*v1.Pod {
	objs, err := s.pods.ByIndex(memberIndex, key)
	if err != nil {
		return nil
	}
	out := make([]*v1.Pod, 0, len(objs))
	for _, o := range objs {
		p, ok := o.(*v1.Pod)
		if !ok || p.DeletionTimestamp != nil || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		out = append(out, p)
	}
	return out
}

func indexByGroup(obj any) ([]string, error) {
	p, ok := obj.(*v1.Pod)
	if !ok {
		return nil, nil
	}
	if k, ok := Key(p); ok {
		return []string{k}, nil
	}
	return nil, nil
}
