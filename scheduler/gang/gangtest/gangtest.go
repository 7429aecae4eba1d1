// Package gangtest builds gangs (a scheduling.x-k8s.io PodGroup and its member pods, as Kubeflow's training
// operator creates them) and records when their members bind, for the gang plugin's integration tests, the
// gang benchmark and the demo.
package gangtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// PodGroups is the PodGroup resource.
var PodGroups = schema.GroupVersionResource{Group: "scheduling.x-k8s.io", Version: "v1alpha1", Resource: "podgroups"}

// Spec describes a gang.
type Spec struct {
	Namespace, Name string
	// Size pods are created; MinMember (default Size) must be placed together.
	Size, MinMember int
	CPU             string // per pod, e.g. "4"
	Memory          string // per pod, default 1Gi
	GPUs            int64  // nvidia.com/gpu per pod
	// Runtime makes the simulated pods succeed after it (0: run until deleted).
	Runtime time.Duration
	// TimeoutSeconds is spec.scheduleTimeoutSeconds (0: unset).
	TimeoutSeconds int32
	// MinResources is spec.minResources (optional).
	MinResources v1.ResourceList
	// SchedulerName defaults to kubehtc.
	SchedulerName string
}

// PodGroup returns the PodGroup of s as an unstructured object for the dynamic client.
func (s Spec) PodGroup() (*unstructured.Unstructured, error) {
	pg := &schedv1alpha1.PodGroup{
		TypeMeta:   metav1.TypeMeta{APIVersion: schedv1alpha1.SchemeGroupVersion.String(), Kind: "PodGroup"},
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name},
		Spec:       schedv1alpha1.PodGroupSpec{MinMember: int32(s.minMember()), MinResources: s.MinResources},
	}
	if s.TimeoutSeconds > 0 {
		t := s.TimeoutSeconds
		pg.Spec.ScheduleTimeoutSeconds = &t
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pg)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

func (s Spec) minMember() int {
	if s.MinMember > 0 {
		return s.MinMember
	}
	return s.Size
}

// Pod returns member i of the gang.
func (s Spec) Pod(i int) *v1.Pod {
	mem := s.Memory
	if mem == "" {
		mem = "1Gi"
	}
	req := v1.ResourceList{v1.ResourceCPU: resource.MustParse(s.CPU), v1.ResourceMemory: resource.MustParse(mem)}
	limits := v1.ResourceList{}
	if s.GPUs > 0 {
		req[kubehtcv1alpha1.GPUResource] = *resource.NewQuantity(s.GPUs, resource.DecimalSI)
		limits[kubehtcv1alpha1.GPUResource] = *resource.NewQuantity(s.GPUs, resource.DecimalSI)
	}
	sched := s.SchedulerName
	if sched == "" {
		sched = "kubehtc"
	}
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.Namespace,
			Name:      fmt.Sprintf("%s-%d", s.Name, i),
			Labels:    map[string]string{schedv1alpha1.PodGroupLabel: s.Name, kubehtcv1alpha1.ClassLabel: "batch"},
		},
		Spec: v1.PodSpec{
			SchedulerName: sched,
			Containers: []v1.Container{{Name: "main", Image: "registry.example/train:1",
				Resources: v1.ResourceRequirements{Requests: req, Limits: limits}}},
		},
	}
	if s.GPUs > 0 {
		p.Labels[kubehtcv1alpha1.ClassLabel] = "gpu"
	}
	if s.Runtime > 0 {
		p.Annotations = map[string]string{kubehtcv1alpha1.RuntimeAnnotation: s.Runtime.String()}
	}
	return p
}

// Create creates the PodGroup and the first n pods (n < 0: all).
func Create(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, s Spec, n int) error {
	pg, err := s.PodGroup()
	if err != nil {
		return err
	}
	if err := retry(func() error {
		_, err := dyn.Resource(PodGroups).Namespace(s.Namespace).Create(ctx, pg, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("creating PodGroup %s/%s: %w", s.Namespace, s.Name, err)
	}
	if n < 0 {
		n = s.Size
	}
	return CreatePods(ctx, cs, s, 0, n)
}

// CreatePods creates members from..to-1.
func CreatePods(ctx context.Context, cs kubernetes.Interface, s Spec, from, to int) error {
	for i := from; i < to; i++ {
		if err := retry(func() error {
			_, err := cs.CoreV1().Pods(s.Namespace).Create(ctx, s.Pod(i), metav1.CreateOptions{})
			return err
		}); err != nil {
			return fmt.Errorf("creating pod %d of gang %s: %w", i, s.Name, err)
		}
	}
	return nil
}

// retry runs create again when the API server timed out or throttled (an overloaded machine); a retry that
// finds the object already created succeeded.
func retry(create func() error) error {
	var err error
	for attempt := range 5 {
		err = create()
		switch {
		case err == nil:
			return nil
		case attempt > 0 && apierrors.IsAlreadyExists(err):
			return nil
		case apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err):
			time.Sleep(time.Duration(attempt+1) * time.Second)
		default:
			return err
		}
	}
	return err
}

// Event is one observation of the recorder, in the order the watch delivered them.
type Event struct {
	Seq  int
	At   time.Time
	Kind string // "add" (pod created), "bind" (pod got a node), "done" (pod ended)
	Pod  string
	Gang string
	Node string
}

// Recorder watches the pods of a namespace and records creations, binds and completions in watch order.
type Recorder struct {
	mu     sync.Mutex
	events []Event
	stop   chan struct{}
}

// Record starts a recorder on namespace ns; Stop it when done.
func Record(cs kubernetes.Interface, ns string) *Recorder {
	r := &Recorder{stop: make(chan struct{})}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := f.Core().V1().Pods().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			p := obj.(*v1.Pod)
			r.add("add", p)
			if p.Spec.NodeName != "" {
				r.add("bind", p)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, p := oldObj.(*v1.Pod), newObj.(*v1.Pod)
			if o.Spec.NodeName == "" && p.Spec.NodeName != "" {
				r.add("bind", p)
			}
			if !terminal(o) && terminal(p) {
				r.add("done", p)
			}
		},
	})
	f.Start(r.stop)
	f.WaitForCacheSync(r.stop)
	return r
}

func terminal(p *v1.Pod) bool {
	return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
}

func (r *Recorder) add(kind string, p *v1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, Event{Seq: len(r.events), At: time.Now(), Kind: kind, Pod: p.Name,
		Gang: p.Labels[schedv1alpha1.PodGroupLabel], Node: p.Spec.NodeName})
}

// Events returns a copy of what was recorded so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Stop ends the watch.
func (r *Recorder) Stop() { close(r.stop) }

// Count returns how many events of kind the gang has.
func Count(events []Event, gang, kind string) int {
	n := 0
	for _, e := range events {
		if e.Gang == gang && e.Kind == kind {
			n++
		}
	}
	return n
}
