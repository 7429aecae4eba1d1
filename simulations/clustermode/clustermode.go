// Package clustermode is the cluster mode of `kubehtc sim`: the workload replayed on the local cluster (real
// etcd, apiserver, controllers, kubehtc-scheduler and quota controller; KWOK nodes whose pods succeed after
// their runtime annotation). Simulated time runs Compression times faster than the wall clock: pods are
// created at arrival/compression and their runtimes are divided by it; event times are measured on the wall
// clock and multiplied back. It is the ground truth for fast mode, bounded by API-server writes and by the
// timing granularity of KWOK (about a second of wall time, Compression seconds of simulated time).
//
// Each run creates, before its first pod, the scenario's queue tree (the root Queue with the fair-share policy
// compressed like time, see CompressPolicy, and one Queue per scenario queue weighted by its share), one
// namespace per queue labelled kubehtc.io/queue, and each gang's PodGroup before its members; it deletes all
// of it afterwards, so the profiles, run one after the other on the same cluster, start from the same state.
// The quota controller must run in the cluster (internal/localcluster/quotacomponent).
package clustermode

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/simulations/metrics"
	"github.com/kubehtc/kubehtc/simulations/scenario"
	"github.com/kubehtc/kubehtc/simulations/workload"
)

// RunLabel marks every pod of a cluster-mode run.
const RunLabel = kubehtcv1alpha1.SimRunLabel

// Options of one run.
type Options struct {
	// Profile is the scheduler profile.
	Profile string
	// Compression is simulated seconds per wall second.
	Compression float64
	// Duration stops the run at this simulated time; 0 waits until every pod with a runtime succeeded.
	Duration time.Duration
	// Queues are the scenario's fair-share queues; empty: no Queue is created and the namespaces are not
	// labelled, so every pod is outside fair share.
	Queues []scenario.Queue
	// HalfLife and AccountingInterval are the root Queue's fair-share policy in simulated time (default 24h
	// and 1m, the CRD's defaults); the run compresses them (CompressPolicy).
	HalfLife, AccountingInterval time.Duration
	// Targets are the queues' normalised shares.
	Targets map[string]float64
	// Progress, if set, is called after each 200 pods submitted.
	Progress func(done, total int, simulated time.Duration)
}

// Stats is what a run measured about itself beyond the metrics: where its wall time went (for the report's
// notes and docs/simulations.md), preemptions and gangs left partly placed.
type Stats struct {
	// Setup is creating the Queues and namespaces and waiting for the first accounting; Cleanup is deleting
	// everything and waiting until it is gone.
	Setup, Cleanup time.Duration
	// CreateLatency is the wall time of a pod create call (seconds), over all pods.
	CreateLatency metrics.Percentiles
	// Replay is from the first arrival to the end of the run.
	Replay time.Duration
	// CreateToBind is the wall time from a pod's creation to the informer seeing it bound (scheduling queue,
	// scheduling, binding, watch), over bound pods.
	CreateToBind metrics.Percentiles
	// EndLateness is how long after its due end (bind seen + runtime/compression) the informer saw a pod end
	// (KWOK's lifecycle plus watch latency), over ended pods.
	EndLateness metrics.Percentiles
	// LateBehind is the largest lag of a pod creation behind its compressed arrival time.
	LateBehind time.Duration
	// Preempted counts running pods deleted during the run (FairShare reclaim, DefaultPreemption); they are
	// not resubmitted.
	Preempted int
	// Gangs is the number of gangs submitted; GangsPartlyPlaced of them had some but not all members bound
	// during the run (a member preempted later still counts as bound).
	Gangs, GangsPartlyPlaced int
}

// String is a one-line summary of the wall time; cleanup is left out until it happened.
func (t Stats) String() string {
	ms := func(s float64) string { return fmt.Sprintf("%.0fms", 1000*s) }
	cleanup := ""
	if t.Cleanup > 0 {
		cleanup = fmt.Sprintf(", cleanup %s", t.Cleanup.Round(time.Millisecond))
	}
	return fmt.Sprintf("wall: setup %s, replay %s (largest lag of a create behind its arrival %s)%s; pod create call p50 %s p90 %s; create→bind seen p50 %s p90 %s; end seen after due end p50 %s p90 %s",
		t.Setup.Round(time.Millisecond), t.Replay.Round(time.Millisecond), t.LateBehind.Round(time.Millisecond), cleanup,
		ms(t.CreateLatency.P50), ms(t.CreateLatency.P90), ms(t.CreateToBind.P50), ms(t.CreateToBind.P90), ms(t.EndLateness.P50), ms(t.EndLateness.P90))
}

// Run replays set on cluster c with one profile. The cluster's nodes must be set.Pools, and with Queues the
// quota controller must run in it (internal/localcluster/quotacomponent).
func Run(ctx context.Context, c *localcluster.Cluster, set *workload.Set, opts Options) (*metrics.Result, error) {
	res, _, err := RunStats(ctx, c, set, opts)
	return res, err
}

// RunStats is Run, also returning the run's Stats.
func RunStats(ctx context.Context, c *localcluster.Cluster, set *workload.Set, opts Options) (res *metrics.Result, tm Stats, err error) {
	cs := c.Client()
	kc, err := client.New(c.JSONRESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		return nil, tm, err
	}
	t0 := time.Now()
	objs, err := setup(ctx, kc, set, opts)
	defer func() {
		t := time.Now()
		// Clean up even when the run failed or ctx ended, so that the cluster can run the next profile.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if cerr := objs.cleanup(cctx, opts.Profile); cerr != nil && err == nil {
			err = cerr
		}
		tm.Cleanup = time.Since(t)
	}()
	if err != nil {
		return nil, tm, err
	}
	tm.Setup = time.Since(t0)
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
		mu        sync.Mutex
		rec       = metrics.NewRecorder(capacity, opts.Targets)
		start     = time.Now()
		created   = map[string]time.Time{}
		bound     = map[string]time.Time{}
		finished  = map[string]bool{}
		toBind    []float64
		createLat []float64
		lateEnd   []float64
		toFinish  int
	)
	for _, p := range set.Pods {
		if p.Runtime > 0 {
			toFinish++
		}
	}
	sim := func(t time.Time) time.Duration { return time.Duration(float64(t.Sub(start)) * opts.Compression) }
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
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		t := sim(now)
		if _, ok := bound[key]; pod.Spec.NodeName != "" && !ok {
			bound[key] = now
			rec.Bind(t, recPod(p))
			if c, ok := created[key]; ok {
				toBind = append(toBind, now.Sub(c).Seconds())
			}
		}
		if b, ok := bound[key]; ok && !finished[key] && (pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed) {
			finished[key] = true
			rec.Finish(t, recPod(p))
			lateEnd = append(lateEnd, (now.Sub(b) - time.Duration(float64(p.Runtime)/opts.Compression)).Seconds())
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = RunLabel + "=" + opts.Profile
	}))
	inf := factory.Core().V1().Pods().Informer()
	// A running pod deleted during the run was preempted (FairShare reclaim, DefaultPreemption): it stops
	// using its resources there and is not resubmitted.
	gone := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		pod, ok := obj.(*v1.Pod)
		if !ok {
			return
		}
		key := pod.Namespace + "/" + pod.Name
		mu.Lock()
		defer mu.Unlock()
		if _, ok := bound[key]; ok && !finished[key] {
			finished[key] = true
			tm.Preempted++
			rec.Preempt(sim(time.Now()), recPod(byName[key]))
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: observe, UpdateFunc: func(_, n any) { observe(n) }, DeleteFunc: gone}); err != nil {
		return nil, tm, err
	}
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	factory.WaitForCacheSync(stop)

	start = time.Now()
	if err := replay(ctx, set, opts, start, &tm, func(p *workload.Pod) error {
		obj := p.Object(opts.Profile, opts.Compression)
		obj.UID = ""
		obj.Labels[RunLabel] = opts.Profile
		key := p.Queue + "/" + p.Name
		mu.Lock()
		rec.Arrive(sim(time.Now()), recPod(p))
		created[key] = time.Now()
		mu.Unlock()
		w := time.Now()
		if _, err := cs.CoreV1().Pods(obj.Namespace).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating pod %s: %w", p.Name, err)
		}
		mu.Lock()
		createLat = append(createLat, time.Since(w).Seconds())
		mu.Unlock()
		return nil
	}, func(p *workload.Pod) error { return objs.podGroup(ctx, p, opts.Profile) }, func(done int) {
		if opts.Progress != nil {
			opts.Progress(done, len(set.Pods), sim(time.Now()))
		}
	}); err != nil {
		return nil, tm, err
	}
	// Wait for the end: the duration, or every pod with a runtime finished.
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		if opts.Duration > 0 {
			return sim(time.Now()) >= opts.Duration, nil
		}
		mu.Lock()
		defer mu.Unlock()
		return len(finished) >= toFinish, nil
	})
	if err != nil {
		return nil, tm, fmt.Errorf("waiting for the run to drain: %w", err)
	}
	mu.Lock()
	end := sim(time.Now())
	if opts.Duration > 0 {
		end = opts.Duration
	}
	tm.Replay = time.Since(start)
	res = rec.Result(opts.Profile, "cluster", end, len(set.Pods), tm.Replay)
	tm.CreateToBind, tm.EndLateness, tm.CreateLatency = percentiles(toBind), percentiles(lateEnd), percentiles(createLat)
	tm.Gangs, tm.GangsPartlyPlaced = gangs(set, bound)
	mu.Unlock()
	res.Notes = append(res.Notes,
		fmt.Sprintf("cluster mode at compression %g: event times are measured on the wall clock, about ±%s of simulated time", opts.Compression, time.Duration(opts.Compression*float64(time.Second))),
		tm.String())
	if tm.Preempted > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d running pods were preempted (deleted by the scheduler) and not resubmitted", tm.Preempted))
	}
	if tm.Gangs > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d of %d gangs partly placed (some members bound during the run, not all)", tm.GangsPartlyPlaced, tm.Gangs))
	}
	if why := pendingReasons(ctx, cs, set, opts.Profile); why != "" {
		res.Notes = append(res.Notes, why)
	}
	return res, tm, nil
}

// pendingReasons summarises why the pods still pending at the end were not placed: the scheduler's last
// PodScheduled message, most frequent first (at most three), so a report says what held the backlog back.
func pendingReasons(ctx context.Context, cs kubernetes.Interface, set *workload.Set, profile string) string {
	namespaces := map[string]bool{}
	for i := range set.Pods {
		namespaces[set.Pods[i].Queue] = true
	}
	counts := map[string]int{}
	pending, nominated, holding, terminating := 0, 0, 0, 0
	for ns := range namespaces {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Sprintf("pending pods not listed: %v", err)
		}
		for i := range l.Items {
			p := &l.Items[i]
			if p.Spec.SchedulerName != profile {
				continue
			}
			if p.DeletionTimestamp != nil {
				terminating++
				continue
			}
			if p.Spec.NodeName != "" {
				if p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed {
					holding++
				}
				continue
			}
			pending++
			if p.Status.NominatedNodeName != "" {
				nominated++
			}
			msg := "not tried yet"
			for _, c := range p.Status.Conditions {
				if c.Type == v1.PodScheduled && c.Status == v1.ConditionFalse {
					msg = c.Message
				}
			}
			counts[msg]++
		}
	}
	if pending == 0 {
		return ""
	}
	msgs := make([]string, 0, len(counts))
	for m := range counts {
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool {
		if counts[msgs[i]] != counts[msgs[j]] {
			return counts[msgs[i]] > counts[msgs[j]]
		}
		return msgs[i] < msgs[j]
	})
	out := fmt.Sprintf("%d pods pending at the end (%d nominated for a node; %d pods on nodes, %d terminating); the scheduler's last reasons:",
		pending, nominated, holding, terminating)
	for _, m := range msgs[:min(len(msgs), 3)] {
		out += fmt.Sprintf(" %d× %q;", counts[m], m)
	}
	return strings.TrimSuffix(out, ";")
}

// createWorkers bounds the pod creates in flight. A create takes 5–25 ms on a busy local cluster; one at a
// time would cap a replay at about 40 pods per wall second, whatever the compression.
const createWorkers = 32

// replay submits set's pods at their compressed arrival times, up to opts.Duration: gang pods' PodGroups
// synchronously first (group), then each pod (create) on one of createWorkers goroutines, so that pods due at
// once (a burst, or a replay running behind) are created in parallel. Pods due at the same moment may
// therefore reach the scheduler in a different order than the workload lists them. progress is called every
// 200 pods.
func replay(ctx context.Context, set *workload.Set, opts Options, start time.Time, tm *Stats, create, group func(*workload.Pod) error, progress func(int)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	slots := make(chan struct{}, createWorkers)
	defer wg.Wait()
	for i := range set.Pods {
		p := &set.Pods[i]
		if opts.Duration > 0 && p.Arrival > opts.Duration {
			break
		}
		due := time.Duration(float64(p.Arrival) / opts.Compression)
		if d := due - time.Since(start); d > 0 {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(d):
			}
		} else {
			tm.LateBehind = max(tm.LateBehind, -d)
		}
		if p.Gang != "" {
			if err := group(p); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case slots <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := create(p); err != nil {
				cancel(err)
			}
		}()
		if (i+1)%200 == 0 {
			progress(i + 1)
		}
	}
	wg.Wait()
	return context.Cause(ctx)
}

// gangs counts the gangs of set (by queue and name) and those with some but not all of their members bound.
func gangs(set *workload.Set, bound map[string]time.Time) (total, partly int) {
	members, placed := map[string]int{}, map[string]int{}
	for _, p := range set.Pods {
		if p.Gang == "" {
			continue
		}
		g := p.Queue + "/" + p.Gang
		members[g]++
		if _, ok := bound[p.Queue+"/"+p.Name]; ok {
			placed[g]++
		}
	}
	for g, n := range members {
		if placed[g] > 0 && placed[g] < n {
			partly++
		}
	}
	return len(members), partly
}

// percentiles of unsorted values, nearest rank (as the metrics package computes waits).
func percentiles(v []float64) metrics.Percentiles {
	sort.Float64s(v)
	p := metrics.Percentiles{Count: len(v)}
	if len(v) == 0 {
		return p
	}
	rank := func(q float64) float64 { return v[max(0, int(math.Ceil(q*float64(len(v))))-1)] }
	p.P50, p.P90, p.P99 = rank(0.5), rank(0.9), rank(0.99)
	for _, x := range v {
		p.Mean += x
	}
	p.Mean /= float64(len(v))
	return p
}

func recPod(p *workload.Pod) metrics.Pod {
	return metrics.Pod{Name: p.Name, Queue: p.Queue, Class: p.Class, MilliCPU: p.MilliCPU, MemoryBytes: p.MemoryBytes, GPUs: p.GPUs}
}
