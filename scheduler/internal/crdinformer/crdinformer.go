// Package crdinformer registers informers for custom resources (kubehtc's Queues, scheduler-plugins'
// PodGroups) in the scheduler's informer factory, whose clientset knows only built-in types.
package crdinformer

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Resource is a custom resource the scheduler watches.
type Resource struct {
	// Kind names the resource in errors, e.g. "PodGroup".
	Kind string
	// GroupVersion and Plural locate it on the API server; AddToScheme registers its Go types.
	GroupVersion schema.GroupVersion
	Plural       string
	AddToScheme  func(*runtime.Scheme) error
	// Object is an empty object of the type (the factory's key) and NewList returns an empty list.
	Object  runtime.Object
	NewList func() runtime.Object
	// Indexers of the informer.
	Indexers cache.Indexers
}

// Register returns the informer of r from f, creating it on first use. It first checks that the API server
// serves r: the scheduler waits for every informer to sync before it schedules, so without the CRD it would
// wait forever; this says what is missing instead.
func Register(f informers.SharedInformerFactory, cfg *rest.Config, r Resource) (cache.SharedIndexInformer, error) {
	if f == nil || cfg == nil {
		return nil, fmt.Errorf("watching %s: the scheduler has no informer factory or kubeconfig", r.Kind)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("watching %s: discovery client: %w", r.Kind, err)
	}
	if _, err := dc.ServerResourcesForGroupVersion(r.GroupVersion.String()); err != nil {
		return nil, fmt.Errorf("the %s CRD (%s) is not served — install deploy/crds before starting the scheduler: %w", r.Kind, r.GroupVersion, err)
	}
	rc, err := restClient(cfg, r)
	if err != nil {
		return nil, err
	}
	return f.InformerFor(r.Object, func(_ kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return cache.NewSharedIndexInformer(listWatch(rc, r), r.Object, resync, r.Indexers)
	}), nil
}

// restClient builds a JSON REST client for r's group version from the scheduler's kubeconfig.
func restClient(base *rest.Config, r Resource) (*rest.RESTClient, error) {
	scheme := runtime.NewScheme()
	if err := r.AddToScheme(scheme); err != nil {
		return nil, err
	}
	metav1.AddToGroupVersion(scheme, r.GroupVersion)
	cfg := rest.CopyConfig(base)
	cfg.GroupVersion = &r.GroupVersion
	cfg.APIPath = "/apis"
	cfg.ContentType = runtime.ContentTypeJSON
	cfg.AcceptContentTypes = runtime.ContentTypeJSON
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("REST client for %s: %w", r.GroupVersion, err)
	}
	return rc, nil
}

func listWatch(rc *rest.RESTClient, r Resource) *cache.ListWatch {
	codec := metav1.ParameterCodec
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			out := r.NewList()
			err := rc.Get().Resource(r.Plural).VersionedParams(&opts, codec).Do(ctx).Into(out)
			return out, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.Watch = true
			return rc.Get().Resource(r.Plural).VersionedParams(&opts, codec).Watch(ctx)
		},
	}
}
