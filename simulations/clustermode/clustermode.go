// Package clustermode is the cluster mode of `kubehtc sim`: the workload replayed on the local cluster (real
// etcd, apiserver, controllers and kubehtc-scheduler; KWOK nodes whose pods succeed after their runtime
// annotation). Simulated time runs Compression times faster than the wall clock: pods are created at
// arrival/compression and their runtimes are divided by it; event times are measured on the wall clock and
// multiplied back. It is the ground truth for fast mode, bounded by API-server writes and by the timing
// granularity of KWOK (about a second of wall time, Compression seconds of simulated time).
//
// Not supported yet: gangs (PodGroups are not created) and fair-share Queues (no Queue objects are created and
// namespaces are not labelled, so the FairShare plugin skips the pods).
package clustermode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/simulations/metrics"
	"github.com/kubehtc/kubehtc/simulations/workload"
)

// RunLabel marks every pod of a cluster-mode run.
const RunLabel = "sim.kubehtc.io/run"

// Options of one run.
type Options struct {
	// Profile is the scheduler profile.
	Profile string
	// Compression is simulated seconds per wall second.
	Compression float64
	// Duration stops the run at this simulated time; 0 waits until every pod with a runtime succeeded.
	Duration time.Duration
	// Targets are the queues' normalised shares.
	Targets map[string]float64
	// Progress, if set, is called after each 200 pods submitted.
	Progress func(done, total int, simulated time.Duration)
}

// Run replays set on cluster c with one profile. The cluster's nodes must be set.Pools.
func Run(ctx context.Context, c *localcluster.Cluster, set *workload.Set, opts Options) (*metrics.Result, error) {
	for _, p := range set.Pods {
		if p.Gang != "" {
			return nil, errors.New("cluster mode does not create PodGroups yet: scenarios with gangs run in fast mode only")
		}
	}
	cs := c.Client()
	if err := namespaces(ctx, cs, set); err != nil {
		return nil, err
	}
	capacity := metrics.Capacity{}
	for _, n := range set.Pools.Nodes() {
		a := n.Status.Allocatable
		capacity.MilliCPU += a.Cpu().MilliValue()
		capacity.MemoryBytes += a.Memory().Value()
		if g, ok := a[localcluster.GPUResource]; ok {
			capacity.GPUs += g.Value()
		}
	}
	byName := make(map[string]*workload.Pod, len(set.Pods))
	for i := range set.Pods {
		byName[set.Pods[i].Queue+"/"+set.Pods[i].Name] = &set.Pods[i]
	}
	var (
		mu       sync.Mutex
		rec      = metrics.NewRecorder(capacity, opts.Targets)
		start    = time.Now()
		bound    = map[string]bool{}
		finished = map[string]bool{}
		toFinish int
	)
	for _, p := range set.Pods {
		if p.Runtime > 0 {
			toFinish++
		}
	}
	sim := func() time.Duration { return time.Duration(float64(time.Since(start)) * opts.Compression) }
	observe := func(obj any) {
		pod, ok := obj.(*v1.Pod)
		if !ok {
			return
		}
		key := pod.Namespace + "/" + pod.Name
		p := byName[key]
		if p == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		t := sim()
		if pod.Spec.NodeName != "" && !bound[key] {
			bound[key] = true
			rec.Bind(t, recPod(p))
		}
		if bound[key] && !finished[key] && (pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed) {
			finished[key] = true
			rec.Finish(t, recPod(p))
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = RunLabel + "=" + opts.Profile
	}))
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: observe, UpdateFunc: func(_, n any) { observe(n) }}); err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	factory.WaitForCacheSync(stop)

	start = time.Now()
	for i := range set.Pods {
		p := &set.Pods[i]
		if opts.Duration > 0 && p.Arrival > opts.Duration {
			break
		}
		if d := time.Duration(float64(p.Arrival)/opts.Compression) - time.Since(start); d > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d):
			}
		}
		obj := p.Object(opts.Profile, opts.Compression)
		obj.UID = ""
		obj.Labels[RunLabel] = opts.Profile
		mu.Lock()
		rec.Arrive(sim(), recPod(p))
		mu.Unlock()
		if _, err := cs.CoreV1().Pods(obj.Namespace).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating pod %s: %w", p.Name, err)
		}
		if opts.Progress != nil && (i+1)%200 == 0 {
			opts.Progress(i+1, len(set.Pods), sim())
		}
	}
	// Wait for the end: the duration, or every pod with a runtime finished.
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		if opts.Duration > 0 {
			return sim() >= opts.Duration, nil
		}
		mu.Lock()
		defer mu.Unlock()
		return len(finished) >= toFinish, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the run to drain: %w", err)
	}
	mu.Lock()
	end := sim()
	if opts.Duration > 0 {
		end = opts.Duration
	}
	res := rec.Result(opts.Profile, "cluster", end, len(set.Pods), time.Since(start))
	mu.Unlock()
	res.Notes = append(res.Notes, fmt.Sprintf("cluster mode at compression %g: event times are measured on the wall clock, about ±%s of simulated time", opts.Compression, time.Duration(opts.Compression*float64(time.Second))))
	return res, cleanup(ctx, cs, set, opts.Profile)
}

// namespaces creates one namespace per queue.
func namespaces(ctx context.Context, cs kubernetes.Interface, set *workload.Set) error {
	seen := map[string]bool{}
	for _, p := range set.Pods {
		if seen[p.Queue] {
			continue
		}
		seen[p.Queue] = true
		// Not labelled with kubehtc.io/queue: without a Queue object the FairShare plugin would reject the pods.
		ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.Queue}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", p.Queue, err)
		}
	}
	return nil
}

// cleanup deletes the run's pods and waits until they are gone, so the next profile starts on empty nodes.
func cleanup(ctx context.Context, cs kubernetes.Interface, set *workload.Set, profile string) error {
	sel := metav1.ListOptions{LabelSelector: RunLabel + "=" + profile}
	seen := map[string]bool{}
	for _, p := range set.Pods {
		if seen[p.Queue] {
			continue
		}
		seen[p.Queue] = true
		if err := cs.CoreV1().Pods(p.Queue).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, sel); err != nil {
			return fmt.Errorf("deleting the run's pods: %w", err)
		}
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods("").List(ctx, sel)
		if err != nil {
			return false, nil
		}
		return len(l.Items) == 0, nil
	})
}

func recPod(p *workload.Pod) metrics.Pod {
	return metrics.Pod{Name: p.Name, Queue: p.Queue, Class: p.Class, MilliCPU: p.MilliCPU, MemoryBytes: p.MemoryBytes, GPUs: p.GPUs}
}
