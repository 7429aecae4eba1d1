// Package fast is the fast mode of `kubehtc sim`: virtual time, no API server. Arrivals, completions and the
// quota controller's accounting intervals are processed in time order; after each instant's events every
// pending pod, in the profile's queue order, goes through the real scheduling framework
// (scheduler/simframework) over an in-memory cluster and is bound to the best node, or stays pending until an
// event lets it retry.
//
// What the cluster would hold is created from the scenario: a root Queue and one Queue per scenario queue
// (weight = its share), each queue's namespace labelled kubehtc.io/queue, and a PodGroup (minMember = the
// gang's size) when a gang's first pod arrives. The kubehtc profile so runs QueueOrder with live fair-share
// ranks, FairShare's limits and caps, and Gang's all-or-nothing placement; the site policy is the scenario's
// (default half-life 24 h, accounting every minute, in simulated time).
//
// Like kube-scheduler, pods that do not fit do not block the ones behind them, and a pod rejected at
// PreEnqueue (a gang whose other members have not arrived) waits outside the queue until another member
// arrives. The queue is re-sorted at the start of a pass when fair-share ranks have changed since the last
// sort, not after every bind within it. Gang members that wait at Permit stay on their nodes until the rest of
// the gang is placed in the same pass; those still waiting at its end are released. A pod that fails Filter
// runs the profile's PostFilter plugins: preemption by priority, FairShare's reclaim and Gang's release. A
// preempted pod stops at once, is counted in the results' Preempted, its run time is lost work, and it is
// resubmitted under a new name with its full runtime (as a Job controller or pilot factory would); its preemptor is placed in the same attempt. A pod that fits no
// node's free resources skips Filter (simframework.ScheduleUnfit) but still runs PostFilter when a plugin
// there could act. Not modelled: back-off timers (a pod that did not fit is retried at every instant where
// something finished, or at an accounting interval when FairShare rejected it — the events its queueing
// hints requeue it on; a new arrival only tries itself), and plugins that need an API server (see
// simframework; they are named in the results).
package fast

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	quotafairshare "github.com/kubehtc/kubehtc/quota/fairshare"
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
	// HalfLife and AccountingInterval are the root Queue's fair-share policy in simulated time; 0 takes the
	// Queue CRD's default (24h, 1m).
	HalfLife, AccountingInterval time.Duration
	// Progress, if set, is called about every 2,000 pods.
	Progress Progress
	// OnBind, if set, is called for every pod bound, at the simulated time of the binding.
	OnBind func(t time.Duration, p *workload.Pod, node string)
}

// pending is a pod in the scheduling queue.
type pending struct {
	p      *workload.Pod
	obj    *v1.Pod
	queued time.Time
	info   simframework.QueuedPod
	// seq is the submission order: among pods the queue-sort plugin ranks equal, the earlier submitted is first.
	seq uint64
	// gone: bound, or deleted while it waited at Permit; it stays in its group until the group is compacted.
	gone bool
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
	fairShare := addQueues(s, set, opts)
	rec := metrics.NewRecorder(capacity, opts.Targets)
	// Virtual time maps to a fixed epoch so queue timestamps are reproducible.
	epoch := simframework.Epoch
	r := &run{s: s, opts: opts, fr: fr, rec: rec, logger: klog.FromContext(ctx), groups: map[string]*group{},
		gated: map[string][]*pending{}, waiting: map[string]*pending{}, running: map[string]*boundPod{},
		gone: map[string]bool{}, freshRanks: fairShare}
	s.OnEvict(r.evicted)
	var (
		next     int
		nextTick time.Duration
	)
	if fairShare {
		nextTick = s.Account()
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// The next instant: the earliest arrival, completion or (while either is left) accounting interval.
		t, ok := time.Duration(-1), false
		if next < len(set.Pods) {
			t, ok = set.Pods[next].Arrival, true
		}
		for len(r.done) > 0 && r.gone[key(r.done[0].p)] {
			delete(r.gone, key(heap.Pop(&r.done).(running).p))
		}
		if len(r.done) > 0 && (!ok || r.done[0].end < t) {
			t, ok = r.done[0].end, true
		}
		if !ok || (opts.Duration > 0 && t > opts.Duration) {
			break
		}
		ticked := false
		if fairShare && nextTick <= t {
			t, ticked = nextTick, true
		}
		r.now = t
		s.SetNow(epoch.Add(t))
		freed := false
		for len(r.done) > 0 && r.done[0].end == r.now {
			c := heap.Pop(&r.done).(running)
			if r.gone[key(c.p)] {
				delete(r.gone, key(c.p)) // preempted before it finished
				continue
			}
			delete(r.running, key(c.p))
			if err := s.Remove(c.bound); err != nil {
				return nil, err
			}
			fr.update(c.bound.Spec.NodeName, c.p.MilliCPU, c.p.MemoryBytes, c.p.GPUs)
			rec.Finish(r.now, recPod(c.p))
			freed = true
		}
		if ticked {
			nextTick += s.Account()
		}
		arrived := false
		for next < len(set.Pods) && set.Pods[next].Arrival == r.now {
			p := &set.Pods[next]
			next++
			rec.Arrive(r.now, recPod(p))
			if err := r.submit(ctx, r.newPending(p)); err != nil {
				return nil, err
			}
			arrived = true
			if opts.Progress != nil && next%2000 == 0 {
				opts.Progress(next, len(set.Pods), r.now)
			}
		}
		if !freed && !arrived && !ticked {
			continue
		}
		if err := r.pass(ctx, freed, ticked); err != nil {
			return nil, err
		}
		// Preempted pods come back as new submissions at the same instant; they try themselves.
		for len(r.resubmit) > 0 {
			pods := r.resubmit
			r.resubmit = nil
			for _, p := range pods {
				rec.Arrive(r.now, recPod(p))
				if err := r.submit(ctx, r.newPending(p)); err != nil {
					return nil, err
				}
			}
			if err := r.pass(ctx, false, false); err != nil {
				return nil, err
			}
		}
	}
	end := r.now
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

// run is the state of one replay between instants.
type run struct {
	s      *simframework.Scheduler
	opts   Options
	fr     *free
	rec    *metrics.Recorder
	logger klog.Logger
	now    time.Duration
	// groups are the pods in the scheduling queue by shape (see queue.go), in creation order in groupList;
	// gated are those PreEnqueue keeps out, by gang; waiting are those waiting at Permit, by name.
	groups    map[string]*group
	groupList []*group
	gated     map[string][]*pending
	waiting   map[string]*pending
	done      completions
	seq       uint64
	// running are the bound pods by key (namespace/name); gone are those of them preempted (their completion
	// is skipped).
	running map[string]*boundPod
	gone    map[string]bool
	// evictions counts preemptions: a pass brings parked groups back when it changes. resubmit are the
	// preempted pods to submit again once the pass ends, as their Job or pilot factory would.
	evictions int
	resubmit  []*workload.Pod
	// freshRanks: the profile orders by live fair-share ranks, which change with every binding.
	freshRanks bool
}

// boundPod is a running pod and when it started.
type boundPod struct {
	p     *workload.Pod
	start time.Duration
}

func (r *run) newPending(p *workload.Pod) *pending {
	obj := p.Object(r.opts.Profile, 1)
	q := simframework.Epoch.Add(r.now)
	r.seq++
	return &pending{p: p, obj: obj, queued: q, info: r.s.Queued(obj, q), seq: r.seq}
}

// submit hands a new pod to the scheduler and queues it, or holds it while PreEnqueue says so; a gang's first
// pod creates its PodGroup, and every pod of a gang lets its held members try PreEnqueue again.
func (r *run) submit(ctx context.Context, e *pending) error {
	gang := ""
	if e.p.Gang != "" {
		gang = e.obj.Namespace + "/" + e.p.Gang
		if _, seen := r.gated[gang]; !seen {
			pg := &schedv1alpha1.PodGroup{
				ObjectMeta: metav1.ObjectMeta{Namespace: e.obj.Namespace, Name: e.p.Gang, CreationTimestamp: metav1.NewTime(e.queued)},
				Spec:       schedv1alpha1.PodGroupSpec{MinMember: int32(max(e.p.GangSize, 1))},
			}
			if err := r.s.AddPodGroup(pg); err != nil {
				return err
			}
			r.gated[gang] = nil
		}
	}
	err := r.s.Submit(ctx, e.obj)
	switch {
	case errors.Is(err, simframework.ErrGated):
		r.logger.V(5).Info("Gated", "pod", e.p.Name, "reason", err)
		r.gated[gang] = append(r.gated[gang], e)
		return nil
	case err != nil:
		return fmt.Errorf("submitting %s: %w", e.p.Name, err)
	}
	r.insert(e)
	if gang == "" || len(r.gated[gang]) == 0 {
		return nil
	}
	held := r.gated[gang][:0]
	for _, g := range r.gated[gang] {
		err := r.s.PreEnqueue(ctx, g.obj)
		switch {
		case errors.Is(err, simframework.ErrGated):
			held = append(held, g)
		case err != nil:
			return fmt.Errorf("submitting %s: %w", g.p.Name, err)
		default:
			r.insert(g)
		}
	}
	r.gated[gang] = held
	return nil
}

// insert puts e into its shape's group.
func (r *run) insert(e *pending) {
	k := shapeKey(e.p)
	g := r.groups[k]
	if g == nil {
		g = &group{key: k, gang: e.p.Gang != "", idx: -1}
		r.groups[k] = g
		r.groupList = append(r.groupList, g)
	}
	g.add(r.s, e)
}

// outcome of one attempt.
type outcome int

const (
	failed outcome = iota
	failedByFairShare
	placed
	waitingAtPermit
)

// pass tries the queued pods in queue order: all of them after a completion (freed), those FairShare
// rejected after an accounting interval (ticked), and the new ones. A group whose pod fails is parked for the
// rest of the pass unless a preemption frees room (see queue.go).
func (r *run) pass(ctx context.Context, freed, ticked bool) error {
	h := &passHeap{s: r.s}
	var visited []*group
	for _, g := range r.groupList {
		if g.live == 0 {
			continue
		}
		start := g.untried
		if freed || (ticked && g.byFairShare) {
			start = g.head
		}
		g.cur, g.parked = g.nextLive(start), false
		if g.cur < len(g.pods) {
			h.groups = append(h.groups, g)
			visited = append(visited, g)
		}
	}
	for i, g := range h.groups {
		g.idx = i
	}
	heap.Init(h)
	var parked []*group
	for h.Len() > 0 {
		g := h.groups[0]
		i := g.cur
		e := g.pods[i]
		evictions := r.evictions
		out, changed, err := r.try(ctx, e)
		if err != nil {
			return err
		}
		g.cur = g.nextLive(i + 1)
		switch {
		case (out == failed || out == failedByFairShare) && !g.gang:
			g.byFairShare = out == failedByFairShare
			g.parked = true
			heap.Remove(h, g.idx)
			parked = append(parked, g)
		case g.cur < len(g.pods):
			if out == failed || out == failedByFairShare {
				g.byFairShare = out == failedByFairShare
			}
			heap.Fix(h, g.idx)
		default:
			heap.Remove(h, g.idx)
		}
		if r.evictions != evictions {
			// Room was freed: the parked groups' pods after e may fit now.
			kept := parked[:0]
			for _, pg := range parked {
				pg.cur = pg.after(r.s, e)
				if pg.cur < len(pg.pods) {
					pg.parked = false
					heap.Push(h, pg)
				} else {
					kept = append(kept, pg)
				}
			}
			parked = kept
		}
		if changed && r.freshRanks {
			heap.Init(h) // fair-share ranks may have moved with the binding or preemption
		}
	}
	// Gang members still waiting at Permit are released: their gang did not complete in this pass.
	pods, err := r.s.Flush(ctx)
	if err != nil {
		return err
	}
	for _, b := range pods {
		r.bound(r.waiting[b.Name], b)
	}
	clear(r.waiting)
	for _, g := range visited {
		g.untried = len(g.pods)
		g.tidy()
	}
	return nil
}

// after is the index of g's first live pod that the queue orders after e.
func (g *group) after(s *simframework.Scheduler, e *pending) int {
	n := len(g.pods) - g.head
	i := g.head + sort.Search(n, func(k int) bool {
		p := g.pods[g.head+k]
		return s.LessQueued(e.info, p.info) || (!s.LessQueued(p.info, e.info) && p.seq > e.seq)
	})
	return g.nextLive(i)
}

// try runs one scheduling attempt for e; changed says whether pods were bound or preempted.
func (r *run) try(ctx context.Context, e *pending) (outcome, bool, error) {
	if r.waiting[e.p.Name] != nil {
		return waitingAtPermit, false, nil
	}
	evictions := r.evictions
	schedule := r.s.Schedule
	if !r.fr.fits(e.p) {
		// No node has the free resources: only preemption could place the pod.
		if !r.s.MayPreempt(e.obj) {
			if e.p.GPUs > 0 {
				r.rec.GPUPodUnschedulable(r.now)
			}
			return failed, false, nil
		}
		schedule = r.s.ScheduleUnfit
	}
	pods, err := schedule(ctx, e.obj)
	var unsched *simframework.UnschedulableError
	switch {
	case errors.Is(err, simframework.ErrWaiting):
		r.waiting[e.p.Name] = e
		return waitingAtPermit, r.evictions != evictions, nil
	case errors.As(err, &unsched):
		r.logger.V(5).Info("Unschedulable", "pod", e.p.Name, "reason", err)
		if e.p.GPUs > 0 {
			r.rec.GPUPodUnschedulable(r.now)
		}
		if slices.Contains(unsched.Plugins, fairShareName) {
			return failedByFairShare, r.evictions != evictions, nil
		}
		return failed, r.evictions != evictions, nil
	case err != nil:
		return failed, false, fmt.Errorf("scheduling %s: %w", e.p.Name, err)
	}
	for _, b := range pods {
		p := e
		if b.Name != e.p.Name {
			p = r.waiting[b.Name]
		}
		r.bound(p, b)
	}
	return placed, true, nil
}

// fairShareName is the FairShare plugin's name: its rejections are retried at accounting intervals.
const fairShareName = "FairShare"

// evicted takes a preemption victim off the books: a running pod frees its node and will not complete, a pod
// that waited at Permit leaves the queue. Either is submitted again once the pass ends, under a new name, with
// its full runtime: a Job controller or a pilot factory replaces a deleted pod.
func (r *run) evicted(pod *v1.Pod) {
	k := pod.Namespace + "/" + pod.Name
	r.evictions++
	if b := r.running[k]; b != nil && pod.Spec.NodeName != "" {
		delete(r.running, k)
		r.gone[k] = true
		p := b.p
		r.fr.update(pod.Spec.NodeName, p.MilliCPU, p.MemoryBytes, p.GPUs)
		r.rec.Preempt(r.now, recPod(p))
		r.queueResubmit(p)
		return
	}
	if e := r.waiting[pod.Name]; e != nil {
		delete(r.waiting, pod.Name)
		r.dequeue(e)
		r.rec.Preempt(r.now, recPod(e.p))
		r.queueResubmit(e.p)
		return
	}
	r.logger.Error(nil, "A preemption victim is neither running nor waiting", "pod", klog.KObj(pod))
}

// queueResubmit makes the replacement of a preempted pod: same job, new name, arriving now.
func (r *run) queueResubmit(p *workload.Pod) {
	q := p.Replacement(r.now)
	r.resubmit = append(r.resubmit, &q)
}

// dequeue takes e out of its group.
func (r *run) dequeue(e *pending) {
	g := r.groups[shapeKey(e.p)]
	if g == nil {
		return
	}
	if g.cur < len(g.pods) && g.pods[g.cur] == e {
		g.remove(g.cur)
		return
	}
	for i := g.head; i < len(g.pods); i++ {
		if g.pods[i] == e && !e.gone {
			g.remove(i)
			return
		}
	}
}

func key(p *workload.Pod) string { return p.Queue + "/" + p.Name }

// bound records a binding.
func (r *run) bound(e *pending, b *v1.Pod) {
	p := e.p
	delete(r.waiting, p.Name)
	r.dequeue(e)
	r.running[key(p)] = &boundPod{p: p, start: r.now}
	r.fr.update(b.Spec.NodeName, -p.MilliCPU, -p.MemoryBytes, -p.GPUs)
	r.rec.Bind(r.now, recPod(p))
	if r.opts.OnBind != nil {
		r.opts.OnBind(r.now, p, b.Spec.NodeName)
	}
	if p.Runtime > 0 {
		heap.Push(&r.done, running{end: r.now + p.Runtime, p: p, bound: b})
	}
}

// addQueues creates what the cluster would hold for fair share: a root Queue (the scenario's site policy) and
// one leaf per target queue, weight = its normalised share in thousandths (at least 1), and the namespaces of
// the pods, labelled with their queue when it is one of them. It reports whether there are queues.
func addQueues(s *simframework.Scheduler, set *workload.Set, opts Options) bool {
	targets := opts.Targets
	if len(targets) == 0 {
		return false
	}
	root := &kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: kubehtcv1alpha1.RootQueueName}}
	if opts.HalfLife > 0 || opts.AccountingInterval > 0 {
		// As the API server would store it: an omitted field takes the CRD's default.
		root.Spec.Policy = &kubehtcv1alpha1.FairSharePolicy{
			HalfLife:           metav1.Duration{Duration: cmp.Or(opts.HalfLife, quotafairshare.DefaultHalfLife)},
			AccountingInterval: metav1.Duration{Duration: cmp.Or(opts.AccountingInterval, quotafairshare.DefaultAccountingInterval)},
		}
	}
	s.AddQueue(root)
	for _, name := range slices.Sorted(maps.Keys(targets)) {
		s.AddQueue(&kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: kubehtcv1alpha1.QueueSpec{Parent: kubehtcv1alpha1.RootQueueName, Weight: int32(max(math.Round(targets[name]*1000), 1))}})
	}
	seen := map[string]bool{}
	for _, p := range set.Pods {
		if seen[p.Queue] {
			continue
		}
		seen[p.Queue] = true
		ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.Queue}}
		if _, ok := targets[p.Queue]; ok {
			ns.Labels = map[string]string{kubehtcv1alpha1.QueueLabel: p.Queue}
		}
		s.AddNamespace(ns)
	}
	return true
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
