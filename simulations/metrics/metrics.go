// Package metrics records what happens in one simulation run (arrivals, binds, completions, failed GPU
// placements) and turns it into the results of the report: allocation and pending pods over time, wait-time
// percentiles per class and queue, delivered share per queue against its target, GPU fragmentation at
// saturation, makespan and jobs replayed per wall second. It is the same for both runners.
package metrics

import (
	"maps"
	"math"
	"slices"
	"sort"
	"time"
)

// Pod is what the recorder needs to know about a pod.
type Pod struct {
	Name, Queue, Class string
	MilliCPU           int64
	MemoryBytes        int64
	GPUs               int64
}

// Capacity is the cluster's allocatable total.
type Capacity struct {
	MilliCPU, MemoryBytes, GPUs int64
}

// Recorder collects events in time order. Times are simulated, from the start of the run.
type Recorder struct {
	capacity  Capacity
	targets   map[string]float64
	arrived   map[string]time.Duration
	started   map[string]bool
	waits     []wait
	steps     []step
	cur       step
	queueCPU  map[string]int64
	cpuByQ    map[string]float64 // milli-CPU·seconds delivered per queue
	lastT     time.Duration
	frag      *float64
	fragAt    time.Duration
	finished  int
	preempted int
	gpuCurve  gpuCurve
	// boundAt is when each running pod started; lost is the milli-CPU·seconds preempted pods had run.
	boundAt map[string]time.Duration
	lost    float64
}

type wait struct {
	class, queue string
	d            time.Duration
}

// step is the state after an event at t.
type step struct {
	t             time.Duration
	cpu, mem, gpu int64
	pending       int
	running       int
	// queueCPU is shared with the previous step when no queue's allocation changed.
	queueCPU map[string]int64
}

// NewRecorder starts a run on a cluster of capacity; targets are the queues' normalised shares (may be empty).
func NewRecorder(capacity Capacity, targets map[string]float64) *Recorder {
	return &Recorder{
		capacity: capacity,
		targets:  targets,
		arrived:  map[string]time.Duration{},
		started:  map[string]bool{},
		queueCPU: map[string]int64{},
		cpuByQ:   map[string]float64{},
		boundAt:  map[string]time.Duration{},
	}
}

func (r *Recorder) advance(t time.Duration) {
	if t > r.lastT {
		dt := (t - r.lastT).Seconds()
		for q, c := range r.queueCPU {
			r.cpuByQ[q] += float64(c) * dt
		}
		r.lastT = t
	}
}

func (r *Recorder) record(t time.Duration, queueChanged bool) {
	s := r.cur
	s.t = t
	if queueChanged {
		s.queueCPU = make(map[string]int64, len(r.queueCPU))
		for q, c := range r.queueCPU {
			s.queueCPU[q] = c
		}
	} else if n := len(r.steps); n > 0 {
		s.queueCPU = r.steps[n-1].queueCPU
	}
	if n := len(r.steps); n > 0 && r.steps[n-1].t == t {
		r.steps[n-1] = s
	} else {
		r.steps = append(r.steps, s)
	}
	r.cur = s
}

// Arrive records a pod's submission.
func (r *Recorder) Arrive(t time.Duration, p Pod) {
	r.advance(t)
	r.gpuCurve.arrive(p.GPUs, r.cur.gpu, r.capacity.GPUs)
	r.arrived[p.Name] = t
	r.cur.pending++
	r.record(t, false)
}

// Bind records a pod starting to run.
func (r *Recorder) Bind(t time.Duration, p Pod) {
	r.advance(t)
	if a, ok := r.arrived[p.Name]; ok && !r.started[p.Name] {
		r.started[p.Name] = true
		r.waits = append(r.waits, wait{class: p.Class, queue: p.Queue, d: t - a})
		r.cur.pending--
	}
	r.cur.cpu += p.MilliCPU
	r.cur.mem += p.MemoryBytes
	r.cur.gpu += p.GPUs
	r.cur.running++
	r.queueCPU[p.Queue] += p.MilliCPU
	r.boundAt[p.Name] = t
	r.record(t, true)
}

// Finish records a running pod ending.
func (r *Recorder) Finish(t time.Duration, p Pod) {
	r.advance(t)
	r.cur.cpu -= p.MilliCPU
	r.cur.mem -= p.MemoryBytes
	r.cur.gpu -= p.GPUs
	r.cur.running--
	r.queueCPU[p.Queue] -= p.MilliCPU
	r.finished++
	delete(r.boundAt, p.Name)
	r.record(t, true)
}

// Preempt records a pod deleted by the scheduler to make room for another (DefaultPreemption, FairShare
// reclaim): a running pod stops using its resources (the time it ran is lost work), a pod not yet running
// leaves the pending ones. Neither counts as finished; a runner that resubmits the job records the
// replacement's Arrive under a new name.
func (r *Recorder) Preempt(t time.Duration, p Pod) {
	r.advance(t)
	r.preempted++
	if !r.started[p.Name] {
		r.cur.pending--
		r.record(t, false)
		return
	}
	r.cur.cpu -= p.MilliCPU
	r.cur.mem -= p.MemoryBytes
	r.cur.gpu -= p.GPUs
	r.cur.running--
	r.queueCPU[p.Queue] -= p.MilliCPU
	if at, ok := r.boundAt[p.Name]; ok {
		r.lost += float64(p.MilliCPU) * (t - at).Seconds()
		delete(r.boundAt, p.Name)
	}
	r.record(t, true)
}

// GPUPodUnschedulable records a GPU pod that fits no node; the first one fixes the GPU fragmentation figure:
// the fraction of the cluster's GPUs left unallocated at that moment (ATC'23's "unallocated GPU" metric).
func (r *Recorder) GPUPodUnschedulable(t time.Duration) {
	if r.frag != nil || r.capacity.GPUs == 0 {
		return
	}
	f := 1 - float64(r.cur.gpu)/float64(r.capacity.GPUs)
	r.frag, r.fragAt = &f, t
}

// Percentiles of a wait-time distribution, in seconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Mean  float64 `json:"mean"`
}

// Share is a queue's delivered CPU share against its target.
type Share struct {
	Queue     string  `json:"queue"`
	Target    float64 `json:"target"`
	Delivered float64 `json:"delivered"`
}

// Series are sampled values over simulated time (step-held at each sample).
type Series struct {
	// Seconds are the sample times.
	Seconds []float64 `json:"seconds"`
	// CPU, Memory, GPU are allocated fractions of capacity.
	CPU    []float64 `json:"cpu"`
	Memory []float64 `json:"memory"`
	GPU    []float64 `json:"gpu"`
	// Pending is the number of submitted pods not yet started.
	Pending []int `json:"pending"`
	// QueueShare is each queue's fraction of the allocated CPU.
	QueueShare map[string][]float64 `json:"queueShare,omitempty"`
}

// Result is one run's figures.
type Result struct {
	Profile string `json:"profile"`
	Mode    string `json:"mode"`
	// Notes say what the run could not model (plugins disabled in fast mode...).
	Notes []string `json:"notes,omitempty"`
	// Jobs is the number of pods submitted; Started of them ran; Finished ended.
	Jobs     int `json:"jobs"`
	Started  int `json:"started"`
	Finished int `json:"finished"`
	// Preempted pods were deleted by the scheduler (DefaultPreemption, FairShare reclaim), running or not.
	Preempted int `json:"preempted"`
	// LostCoreHours is the run time of preempted pods before their preemption, in core-hours: work thrown
	// away (their jobs are resubmitted with the full runtime). LostFraction is it over the core-hours
	// delivered (allocated CPU integrated over the run, lost work included).
	LostCoreHours float64 `json:"lostCoreHours"`
	LostFraction  float64 `json:"lostFraction"`
	// MakespanSeconds is the simulated time from the start to the last event.
	MakespanSeconds float64 `json:"makespanSeconds"`
	// WallSeconds is the run's wall-clock time; JobsPerSecond = Jobs / WallSeconds.
	WallSeconds   float64 `json:"wallSeconds"`
	JobsPerSecond float64 `json:"jobsPerSecond"`
	// Utilization is the time-averaged allocated fraction over the makespan.
	Utilization map[string]float64 `json:"utilization"`
	// Wait percentiles: "all", "class/<c>", "queue/<q>".
	Wait map[string]Percentiles `json:"wait"`
	// Shares are delivered CPU shares per queue (CPU-seconds over the run) against targets.
	Shares []Share `json:"shares,omitempty"`
	// ShareDeviation is the largest |delivered - target| over queues.
	ShareDeviation *float64 `json:"shareDeviation,omitempty"`
	// GPUUnallocatedAtFirstFailure is the fraction of GPUs unallocated when the first GPU pod failed to fit.
	GPUUnallocatedAtFirstFailure *float64 `json:"gpuUnallocatedAtFirstFailure,omitempty"`
	// FirstGPUFailureSeconds is when that happened.
	FirstGPUFailureSeconds *float64 `json:"firstGpuFailureSeconds,omitempty"`
	// AllocatedAtEnd is the allocated fraction of each resource at the end of the run.
	AllocatedAtEnd map[string]float64 `json:"allocatedAtEnd"`
	// WaitCDF is the sorted wait times (seconds), sampled to at most 400 points, for plots.
	WaitCDF []float64 `json:"waitCdf"`
	Series  Series    `json:"series"`
	// GPUCurve is the GPU allocation ratio against arrived GPU requests (ATC'23's figure), when GPU pods arrived.
	GPUCurve []GPUPoint `json:"gpuCurve,omitempty"`
}

// Samples is the number of points of the time series.
const Samples = 300

// Result computes the figures at the end time end; jobs is the number of pods submitted.
func (r *Recorder) Result(profile, mode string, end time.Duration, jobs int, wall time.Duration) *Result {
	r.advance(end)
	res := &Result{Profile: profile, Mode: mode, Jobs: jobs, Started: len(r.waits), Finished: r.finished, Preempted: r.preempted,
		MakespanSeconds: end.Seconds(), WallSeconds: wall.Seconds(), Wait: map[string]Percentiles{}, Utilization: map[string]float64{}}
	if wall > 0 {
		res.JobsPerSecond = float64(jobs) / wall.Seconds()
	}
	// Time-averaged allocation.
	var cpu, mem, gpu float64
	for i, s := range r.steps {
		next := end
		if i+1 < len(r.steps) {
			next = r.steps[i+1].t
		}
		dt := (next - s.t).Seconds()
		cpu += float64(s.cpu) * dt
		mem += float64(s.mem) * dt
		gpu += float64(s.gpu) * dt
	}
	res.LostCoreHours = r.lost / 1000 / 3600
	if cpu > 0 {
		res.LostFraction = r.lost / cpu
	}
	if end > 0 {
		secs := end.Seconds()
		res.Utilization["cpu"] = frac(cpu/secs, r.capacity.MilliCPU)
		res.Utilization["memory"] = frac(mem/secs, r.capacity.MemoryBytes)
		if r.capacity.GPUs > 0 {
			res.Utilization["gpu"] = frac(gpu/secs, r.capacity.GPUs)
		}
	}
	// Waits.
	groups := map[string][]float64{}
	for _, w := range r.waits {
		s := w.d.Seconds()
		groups["all"] = append(groups["all"], s)
		groups["class/"+w.class] = append(groups["class/"+w.class], s)
		groups["queue/"+w.queue] = append(groups["queue/"+w.queue], s)
	}
	for k, v := range groups {
		sort.Float64s(v)
		res.Wait[k] = percentiles(v)
	}
	all := groups["all"]
	res.WaitCDF = make([]float64, 0, 400)
	for i := 0; i < 400 && len(all) > 0; i++ {
		res.WaitCDF = append(res.WaitCDF, all[i*len(all)/400])
	}
	// Shares.
	if len(r.targets) > 0 {
		var total float64
		for _, v := range r.cpuByQ {
			total += v
		}
		dev := 0.0
		for _, q := range slices.Sorted(maps.Keys(r.targets)) {
			d := 0.0
			if total > 0 {
				d = r.cpuByQ[q] / total
			}
			res.Shares = append(res.Shares, Share{Queue: q, Target: r.targets[q], Delivered: d})
			dev = math.Max(dev, math.Abs(d-r.targets[q]))
		}
		res.ShareDeviation = &dev
	}
	if r.frag != nil {
		f, at := *r.frag, r.fragAt.Seconds()
		res.GPUUnallocatedAtFirstFailure, res.FirstGPUFailureSeconds = &f, &at
	}
	res.Series = r.series(end)
	res.AllocatedAtEnd = map[string]float64{
		"cpu":    frac(float64(r.cur.cpu), r.capacity.MilliCPU),
		"memory": frac(float64(r.cur.mem), r.capacity.MemoryBytes),
	}
	if r.capacity.GPUs > 0 {
		res.AllocatedAtEnd["gpu"] = frac(float64(r.cur.gpu), r.capacity.GPUs)
	}
	res.GPUCurve = r.gpuCurve.result(r.cur.gpu, r.capacity.GPUs)
	return res
}

func (r *Recorder) series(end time.Duration) Series {
	s := Series{}
	if len(r.targets) > 0 {
		s.QueueShare = map[string][]float64{}
	}
	j := 0
	for i := 0; i <= Samples; i++ {
		t := time.Duration(float64(end) * float64(i) / Samples)
		for j+1 < len(r.steps) && r.steps[j+1].t <= t {
			j++
		}
		var st step
		if len(r.steps) > 0 && r.steps[j].t <= t {
			st = r.steps[j]
		}
		s.Seconds = append(s.Seconds, t.Seconds())
		s.CPU = append(s.CPU, frac(float64(st.cpu), r.capacity.MilliCPU))
		s.Memory = append(s.Memory, frac(float64(st.mem), r.capacity.MemoryBytes))
		s.GPU = append(s.GPU, frac(float64(st.gpu), r.capacity.GPUs))
		s.Pending = append(s.Pending, st.pending)
		for q := range r.targets {
			v := 0.0
			if st.cpu > 0 {
				v = float64(st.queueCPU[q]) / float64(st.cpu)
			}
			s.QueueShare[q] = append(s.QueueShare[q], v)
		}
	}
	return s
}

func frac(v float64, capacity int64) float64 {
	if capacity == 0 {
		return 0
	}
	return v / float64(capacity)
}

// percentiles uses the nearest-rank method on sorted values.
func percentiles(v []float64) Percentiles {
	p := Percentiles{Count: len(v)}
	if len(v) == 0 {
		return p
	}
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(v)))) - 1
		return v[max(i, 0)]
	}
	p.P50, p.P90, p.P99 = rank(0.5), rank(0.9), rank(0.99)
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	p.Mean = sum / float64(len(v))
	return p
}

// Flat returns the result's scalar metrics under "<profile>/<metric>" keys, as range files name them.
func (res *Result) Flat() map[string]float64 {
	m := map[string]float64{}
	put := func(k string, v float64) { m[res.Profile+"/"+k] = v }
	put("jobs", float64(res.Jobs))
	put("started", float64(res.Started))
	put("unstarted", float64(res.Jobs-res.Started))
	put("preempted", float64(res.Preempted))
	put("lost_core_hours", res.LostCoreHours)
	put("lost_fraction", res.LostFraction)
	put("makespan_seconds", res.MakespanSeconds)
	for k, v := range res.Utilization {
		put("utilization_"+k, v)
	}
	for k, v := range res.AllocatedAtEnd {
		put("allocated_at_end_"+k, v)
	}
	for k, p := range res.Wait {
		prefix := "wait"
		if k != "all" {
			prefix = "wait_" + k
		}
		put(prefix+"_p50_seconds", p.P50)
		put(prefix+"_p90_seconds", p.P90)
		put(prefix+"_p99_seconds", p.P99)
		// How many of the group's pods started (each started pod has a wait).
		put(prefix+"_started", float64(p.Count))
	}
	if res.ShareDeviation != nil {
		put("share_deviation", *res.ShareDeviation)
	}
	if res.GPUUnallocatedAtFirstFailure != nil {
		put("gpu_unallocated_at_first_failure", *res.GPUUnallocatedAtFirstFailure)
	}
	putGPUCurve(res.GPUCurve, put)
	return m
}
