// Package fast is the fast mode of `kubehtc sim`: virtual time, no API server. Arrivals and completions are
// processed in time order; after each instant's events every pending pod, in the profile's queue order, goes
// through the real scheduling framework (scheduler/simframework) over an in-memory cluster and is bound to the
// best node, or stays pending until the next completion frees capacity.
//
// Like kube-scheduler, pods that do not fit do not block the ones behind them. Not modelled: preemption,
// back-off timers (a pod that did not fit is retried at every instant where something finished, when a queueing
// hint would let it retry; a new arrival only tries itself), and plugins that need an API server (see simframework; they are named in the results).
package fast

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/scheduler/simframework"
	"github.com/kubehtc/kubehtc/simulations/metrics"
	"github.com/kubehtc/kubehtc/simulations/workload"
)

// Progress is called now and then with the pods submitted so far, the total, and the simulated time.
type Progress func(done, total int, simulated time.Duration)

// Options of one run.
type Options struct {
	// Profile is the scheduler profile (schedulerName).
	Profile string
	// Duration stops the run at this simulated time; 0 runs until no event is left.
	Duration time.Duration
	// Seed breaks ties between equally scored nodes.
	Seed uint64
	// Targets are the queues' normalised fair-share targets, for the share metrics.
	Targets map[string]float64
	// Progress, if set, is called about every 2,000 pods.
	Progress Progress
}

type pending struct {
	p      *workload.Pod
	obj    *v1.Pod
	queued time.Time
	// tried: the pod failed at the current capacity; only a completion (freed capacity) makes it worth
	// retrying, as kube-scheduler's queueing hints only requeue it on such events.
	tried bool
}

type running struct {
	end   time.Duration
	p     *workload.Pod
	bound *v1.Pod
}

type completions []running

func (c completions) Len() int           { return len(c) }
func (c completions) Less(i, j int) bool { return c[i].end < c[j].end }
func (c completions) Swap(i, j int)      { c[i], c[j] = c[j], c[i] }
func (c *completions) Push(x any)        { *c = append(*c, x.(running)) }
func (c *completions) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

// free tracks each node's unrequested capacity, to skip pods that fit no node without asking the framework
// (NodeResourcesFit, in every profile, would reject them on every node).
type free struct {
	cpu, mem, gpu  map[string]int64
	maxCPU, maxMem int64
	maxGPU         int64
	dirty          bool
}

func (f *free) update(node string, cpu, mem, gpu int64) {
	f.cpu[node] += cpu
	f.mem[node] += mem
	f.gpu[node] += gpu
	f.dirty = true
}

func (f *free) fits(p *workload.Pod) bool {
	if f.dirty {
		f.maxCPU, f.maxMem, f.maxGPU = 0, 0, 0
		for n, c := range f.cpu {
			f.maxCPU, f.maxMem, f.maxGPU = max(f.maxCPU, c), max(f.maxMem, f.mem[n]), max(f.maxGPU, f.gpu[n])
		}
		f.dirty = false
	}
	return p.MilliCPU <= f.maxCPU && p.MemoryBytes <= f.maxMem && p.GPUs <= f.maxGPU
}

// Run replays set on one profile and returns its metrics.
func Run(ctx context.Context, set *workload.Set, opts Options) (*metrics.Result, error) {
	wallStart := time.Now()
	s, err := simframework.New(ctx, opts.Profile, opts.Seed)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	capacity := metrics.Capacity{}
	fr := &free{cpu: map[string]int64{}, mem: map[string]int64{}, gpu: map[string]int64{}, dirty: true}
	for _, n := range set.Pools.Nodes() {
		s.AddNode(n)
		a := n.Status.Allocatable
		cpu, mem, gpu := a.Cpu().MilliValue(), a.Memory().Value(), gpuOf(a)
		capacity.MilliCPU += cpu
		capacity.MemoryBytes += mem
		capacity.GPUs += gpu
		fr.update(n.Name, cpu, mem, gpu)
	}
	rec := metrics.NewRecorder(capacity, opts.Targets)
	// Virtual time maps to a fixed epoch so queue timestamps are reproducible.
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var (
		queue  []pending
		done   completions
		next   int
		now    time.Duration
		logger = klog.FromContext(ctx)
	)
	insert := func(e pending) {
		i := sort.Search(len(queue), func(i int) bool {
			return s.Less(e.obj, e.queued, queue[i].obj, queue[i].queued)
		})
		queue = append(queue, pending{})
		copy(queue[i+1:], queue[i:])
		queue[i] = e
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// The next instant: the earliest arrival or completion.
		t, ok := time.Duration(-1), false
		if next < len(set.Pods) {
			t, ok = set.Pods[next].Arrival, true
		}
		if len(done) > 0 && (!ok || done[0].end < t) {
			t, ok = done[0].end, true
		}
		if !ok || (opts.Duration > 0 && t > opts.Duration) {
			break
		}
		now = t
		freed := false
		for len(done) > 0 && done[0].end == now {
			r := heap.Pop(&done).(running)
			if err := s.Remove(r.bound); err != nil {
				return nil, err
			}
			fr.update(r.bound.Spec.NodeName, r.p.MilliCPU, r.p.MemoryBytes, r.p.GPUs)
			rec.Finish(now, recPod(r.p))
			freed = true
		}
		arrived := false
		for next < len(set.Pods) && set.Pods[next].Arrival == now {
			p := &set.Pods[next]
			next++
			insert(pending{p: p, obj: p.Object(opts.Profile, 1), queued: epoch.Add(now)})
			rec.Arrive(now, recPod(p))
			arrived = true
			if opts.Progress != nil && next%2000 == 0 {
				opts.Progress(next, len(set.Pods), now)
			}
		}
		if !freed && !arrived {
			continue
		}
		// Scheduling pass over the queue in order; bound pods leave it.
		kept := queue[:0]
		for _, e := range queue {
			if e.tried && !freed {
				kept = append(kept, e)
				continue
			}
			e.tried = true
			if !fr.fits(e.p) {
				kept = append(kept, e)
				if e.p.GPUs > 0 {
					rec.GPUPodUnschedulable(now)
				}
				continue
			}
			bound, err := s.Schedule(ctx, e.obj)
			if errors.Is(err, simframework.ErrUnschedulable) {
				logger.V(5).Info("Unschedulable", "pod", e.p.Name, "reason", err)
				kept = append(kept, e)
				if e.p.GPUs > 0 {
					rec.GPUPodUnschedulable(now)
				}
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("scheduling %s: %w", e.p.Name, err)
			}
			fr.update(bound.Spec.NodeName, -e.p.MilliCPU, -e.p.MemoryBytes, -e.p.GPUs)
			rec.Bind(now, recPod(e.p))
			if e.p.Runtime > 0 {
				heap.Push(&done, running{end: now + e.p.Runtime, p: e.p, bound: bound})
			}
		}
		clear(queue[len(kept):])
		queue = kept
	}
	end := now
	if opts.Duration > 0 {
		end = opts.Duration
	}
	if opts.Progress != nil {
		opts.Progress(next, len(set.Pods), end)
	}
	res := rec.Result(opts.Profile, "fast", end, next, time.Since(wallStart))
	for _, d := range s.Disabled() {
		res.Notes = append(res.Notes, fmt.Sprintf("plugin %s not run in fast mode: %s", d.Name, d.Reason))
	}
	return res, nil
}

func gpuOf(l v1.ResourceList) int64 {
	q, ok := l[localcluster.GPUResource]
	if !ok {
		return 0
	}
	return q.Value()
}

func recPod(p *workload.Pod) metrics.Pod {
	return metrics.Pod{Name: p.Name, Queue: p.Queue, Class: p.Class, MilliCPU: p.MilliCPU, MemoryBytes: p.MemoryBytes, GPUs: p.GPUs}
}
