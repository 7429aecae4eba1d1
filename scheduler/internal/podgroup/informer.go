package podgroup

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	fwk "k8s.io/kube-scheduler/framework"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"
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
	cfg := h.KubeConfig()
	if cfg == nil {
		return nil, fmt.Errorf("podgroup: the scheduler has no kubeconfig to watch %s", EventResource)
	}
	// The scheduler waits for every informer to sync before it schedules: without the CRD it would wait
	// forever, so say what is missing instead.
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("podgroup: discovery client: %w", err)
	}
	if _, err := dc.ServerResourcesForGroupVersion(schedv1alpha1.SchemeGroupVersion.String()); err != nil {
		return nil, fmt.Errorf("podgroup: the PodGroup CRD (%s) is not served — install deploy/crds before starting the scheduler: %w",
			schedv1alpha1.SchemeGroupVersion, err)
	}
	rc, err := restClient(cfg)
	if err != nil {
		return nil, err
	}
	groups := f.InformerFor(&schedv1alpha1.PodGroup{}, func(_ kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return cache.NewSharedIndexInformer(listWatch(rc), &schedv1alpha1.PodGroup{}, resync,
			cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	})
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

// restClient builds a JSON REST client for scheduling.x-k8s.io/v1alpha1 from the scheduler's kubeconfig.
func restClient(base *rest.Config) (*rest.RESTClient, error) {
	scheme := runtime.NewScheme()
	if err := schedv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	metav1.AddToGroupVersion(scheme, schedv1alpha1.SchemeGroupVersion)
	cfg := rest.CopyConfig(base)
	cfg.GroupVersion = &schedv1alpha1.SchemeGroupVersion
	cfg.APIPath = "/apis"
	cfg.ContentType = runtime.ContentTypeJSON
	cfg.AcceptContentTypes = runtime.ContentTypeJSON
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("podgroup: REST client for %s: %w", schedv1alpha1.SchemeGroupVersion, err)
	}
	return rc, nil
}

func listWatch(rc *rest.RESTClient) *cache.ListWatch {
	codec := metav1.ParameterCodec
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			out := &schedv1alpha1.PodGroupList{}
			err := rc.Get().Resource("podgroups").VersionedParams(&opts, codec).Do(ctx).Into(out)
			return out, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.Watch = true
			return rc.Get().Resource("podgroups").VersionedParams(&opts, codec).Watch(ctx)
		},
	}
}
