package fast

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/simulations/workload"
)

func oneNode(cpu string) localcluster.NodePoolsConfig {
	return localcluster.NodePoolsConfig{Pools: []localcluster.NodePool{{Name: "cpu", Count: 1, CPU: cpu, Memory: "64Gi"}}}
}

func jobs(prefix, queue string, n int, arrival, runtime time.Duration) []workload.Pod {
	out := make([]workload.Pod, n)
	for i := range out {
		out[i] = workload.Pod{Name: fmt.Sprintf("%s-%d", prefix, i), Queue: queue, Class: "batch", Label: "batch",
			Arrival: arrival, Runtime: runtime, MilliCPU: 1000, MemoryBytes: 1 << 30}
	}
	return out
}

type binding struct {
	Pod  string
	At   time.Duration
	Node string
}

// replay runs set on profile and returns the bindings in order and the result's share deviation.
func replay(t *testing.T, set *workload.Set, profile string, targets map[string]float64, duration time.Duration) ([]binding, float64) {
	t.Helper()
	var log []binding
	res, err := Run(context.Background(), set, Options{Profile: profile, Seed: 1, Targets: targets, Duration: duration,
		OnBind: func(at time.Duration, p *workload.Pod, node string) { log = append(log, binding{p.Name, at, node}) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range res.Notes {
		t.Logf("%s: %s", profile, n)
	}
	dev := -1.0
	if res.ShareDeviation != nil {
		dev = *res.ShareDeviation
	}
	return log, dev
}

func meanWait(log []binding, arrival map[string]time.Duration, prefix string) time.Duration {
	var sum time.Duration
	n := 0
	for _, b := range log {
		if len(b.Pod) > len(prefix) && b.Pod[:len(prefix)] == prefix {
			sum += b.At - arrival[b.Pod]
			n++
		}
	}
	if n == 0 {
		return -1
	}
	return sum / time.Duration(n)
}

// Queue a used the whole node for 4 h; then a and b (50/50) each queue 8 one-hour jobs, a's first. When a's
// old jobs end, fair share serves b first (a's decayed usage is far above b's zero); FIFO serves a first.
func TestFairShareServesQueueWithoutPastUsageFirst(t *testing.T) {
	set := &workload.Set{Pools: oneNode("8")}
	set.Pods = append(set.Pods, jobs("old", "a", 8, 0, 4*time.Hour)...)
	set.Pods = append(set.Pods, jobs("a", "a", 8, 4*time.Hour-time.Minute, time.Hour)...)
	set.Pods = append(set.Pods, jobs("b", "b", 8, 4*time.Hour-time.Minute/2, time.Hour)...)
	arrival := map[string]time.Duration{}
	for _, p := range set.Pods {
		arrival[p.Name] = p.Arrival
	}
	targets := map[string]float64{"a": 0.5, "b": 0.5}
	for _, tc := range []struct {
		profile string
		bFirst  bool
	}{
		{profile: "kubehtc", bFirst: true},
		{profile: "default-scheduler", bFirst: false},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			log, _ := replay(t, set, tc.profile, targets, 0)
			a, b := meanWait(log, arrival, "a-"), meanWait(log, arrival, "b-")
			t.Logf("mean wait: a %v, b %v", a, b)
			if got := b < a; got != tc.bFirst {
				t.Errorf("b waits %v, a %v: b served first = %v, want %v", b, a, got, tc.bFirst)
			}
		})
	}
}

// a and b (50/50) each queue 64 one-hour jobs at once, a's first, on 8 cores; the run stops after 4 h. FIFO
// gives a the whole node (delivered 1.0 vs 0.5: deviation 0.5). Fair share alternates the queues as their
// decayed usage crosses, so each gets about half: at worst one queue is an hour ahead after 4 h (5/8 vs 3/8,
// deviation 0.125).
func TestFairShareDeliversTargets(t *testing.T) {
	set := &workload.Set{Pools: oneNode("8")}
	set.Pods = append(set.Pods, jobs("a", "a", 64, 0, time.Hour)...)
	set.Pods = append(set.Pods, jobs("b", "b", 64, 0, time.Hour)...)
	targets := map[string]float64{"a": 0.5, "b": 0.5}
	_, kubehtc := replay(t, set, "kubehtc", targets, 4*time.Hour)
	_, fifo := replay(t, set, "default-scheduler", targets, 4*time.Hour)
	t.Logf("share deviation: kubehtc %.3f, default-scheduler %.3f", kubehtc, fifo)
	if kubehtc < 0 || kubehtc > 0.125 {
		t.Errorf("kubehtc share deviation %.3f, want at most 0.125", kubehtc)
	}
	if fifo < 0.45 {
		t.Errorf("default-scheduler share deviation %.3f, want about 0.5 (FIFO serves a only)", fifo)
	}
}

// A gang of four one-core pods arrives member by member while only 2 of 8 cores are free. The kubehtc profile
// (Gang) binds the gang whole when the fillers end; the default profile starts members as they come.
func TestGangNeverPartlyBound(t *testing.T) {
	set := &workload.Set{Pools: localcluster.UniformNodePools(2, "4", "16Gi")}
	set.Pods = append(set.Pods, jobs("filler", "a", 6, 0, time.Hour)...)
	for i := range 4 {
		p := jobs(fmt.Sprintf("g-%d", i), "a", 1, time.Duration(i+1)*time.Minute, 30*time.Minute)[0]
		p.Name, p.Gang, p.GangSize = fmt.Sprintf("g-%d", i), "g", 4
		set.Pods = append(set.Pods, p)
	}
	for _, tc := range []struct {
		profile string
		whole   bool
	}{
		{profile: "kubehtc", whole: true},
		{profile: "default-scheduler", whole: false},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			log, _ := replay(t, set, tc.profile, map[string]float64{"a": 1}, 0)
			times := map[time.Duration]int{}
			members := 0
			for _, b := range log {
				if b.Pod[:2] == "g-" {
					times[b.At]++
					members++
				}
			}
			if members != 4 {
				t.Fatalf("%d gang members bound, want 4", members)
			}
			t.Logf("gang members bound per instant: %v", times)
			if got := len(times) == 1; got != tc.whole {
				t.Errorf("gang bound at %d instants: whole = %v, want %v", len(times), got, tc.whole)
			}
		})
	}
}

// Two replays of the same input with the same seed bind the same pods at the same times on the same nodes:
// fair share, gangs and accounting intervals included.
func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	set := &workload.Set{Pools: localcluster.UniformNodePools(6, "16", "64Gi")}
	at := time.Duration(0)
	for i := range 400 {
		at += time.Duration(rng.IntN(60)) * time.Second
		q := []string{"atlas", "cms", "lhcb"}[rng.IntN(3)]
		p := workload.Pod{Name: fmt.Sprintf("p%d", i), Queue: q, Class: "batch", Label: "batch", Arrival: at,
			Runtime: time.Duration(10+rng.IntN(120)) * time.Minute, MilliCPU: int64(1+rng.IntN(8)) * 1000, MemoryBytes: 2 << 30}
		set.Pods = append(set.Pods, p)
		if i%25 == 0 {
			for m := range 3 {
				g := p
				g.Name, g.Gang, g.GangSize, g.MilliCPU = fmt.Sprintf("gang%d-%d", i, m), fmt.Sprintf("gang%d", i), 3, 6000
				set.Pods = append(set.Pods, g)
			}
		}
	}
	targets := map[string]float64{"atlas": 0.5, "cms": 0.3, "lhcb": 0.2}
	first, _ := replay(t, set, "kubehtc", targets, 0)
	second, _ := replay(t, set, "kubehtc", targets, 0)
	// Reclaim preempts some pods; their replacements (<name>-r<n>) are bound too.
	started := map[string]bool{}
	for _, b := range first {
		started[b.Pod] = true
	}
	for _, p := range set.Pods {
		if !started[p.Name] {
			t.Errorf("pod %s never bound", p.Name)
		}
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("second replay differs (-first,+second):\n%s", diff)
	}
}

// Queue a fills an 8-core node with 4-hour jobs; ten minutes later b (50/50, no usage) submits four 1-hour
// jobs. On the kubehtc profile FairShare reclaims at once: four of a's pods are preempted after 10 minutes
// (4 × 1 core × 1/6 h = 0.667 lost core-hours), resubmitted with their full runtime, and b's start without
// waiting; every job finishes in the end. The default profile does not preempt (equal priorities): b waits
// until a's jobs end.
func TestReclaimInFastMode(t *testing.T) {
	// 16 GiB: the node is 8 core-equivalents, as many as its cores (memory counts 4 GiB per core-equivalent).
	set := &workload.Set{Pools: localcluster.NodePoolsConfig{Pools: []localcluster.NodePool{{Name: "cpu", Count: 1, CPU: "8", Memory: "16Gi"}}}}
	set.Pods = append(set.Pods, jobs("a", "a", 8, 0, 4*time.Hour)...)
	set.Pods = append(set.Pods, jobs("b", "b", 4, 10*time.Minute, time.Hour)...)
	targets := map[string]float64{"a": 0.5, "b": 0.5}
	for _, tc := range []struct {
		profile   string
		preempted int
		bWait     time.Duration
	}{
		{profile: "kubehtc", preempted: 4, bWait: 0},
		{profile: "default-scheduler", preempted: 0, bWait: 4*time.Hour - 10*time.Minute},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			res, err := Run(context.Background(), set, Options{Profile: tc.profile, Seed: 1, Targets: targets})
			if err != nil {
				t.Fatal(err)
			}
			bWait := time.Duration(res.Wait["queue/b"].P90 * float64(time.Second))
			t.Logf("started %d, finished %d, preempted %d, b's p90 wait %v", res.Started, res.Finished, res.Preempted, bWait)
			if res.Preempted != tc.preempted {
				t.Errorf("%d pods preempted, want %d", res.Preempted, tc.preempted)
			}
			if bWait != tc.bWait {
				t.Errorf("b's p90 wait %v, want %v", bWait, tc.bWait)
			}
			if res.Started != 12+tc.preempted || res.Finished != 12 {
				t.Errorf("started %d, finished %d; want %d started (replacements included) and all 12 jobs finished", res.Started, res.Finished, 12+tc.preempted)
			}
			if want := float64(tc.preempted) / 6; math.Abs(res.LostCoreHours-want) > 1e-9 {
				t.Errorf("lost %.4f core-hours, want %.4f", res.LostCoreHours, want)
			}
		})
	}
}

// The scenario's half-life decides whose past counts. Queue a used the whole node 12 h ago (for 4 h), b for
// the last 2 h; then b and a (50/50) each queue 8 one-hour jobs, b's first. With the default 24 h half-life,
// a's older but bigger use still weighs more (decayed usage ~0.7 vs ~0.45 core), so b is served first; with a
// 10-minute half-life a's use is forgotten and b's is fresh, so a is served first.
func TestHalfLifeFromOptions(t *testing.T) {
	set := &workload.Set{Pools: oneNode("8")}
	set.Pods = append(set.Pods, jobs("old", "a", 8, 0, 4*time.Hour)...)
	set.Pods = append(set.Pods, jobs("recent", "b", 8, 10*time.Hour, 2*time.Hour)...)
	set.Pods = append(set.Pods, jobs("b", "b", 8, 12*time.Hour-time.Minute, time.Hour)...)
	set.Pods = append(set.Pods, jobs("a", "a", 8, 12*time.Hour-time.Minute/2, time.Hour)...)
	arrival := map[string]time.Duration{}
	for _, p := range set.Pods {
		arrival[p.Name] = p.Arrival
	}
	for _, tc := range []struct {
		halfLife time.Duration
		aFirst   bool
	}{{halfLife: 0, aFirst: false}, {halfLife: 10 * time.Minute, aFirst: true}} {
		t.Run(fmt.Sprintf("halfLife=%v", tc.halfLife), func(t *testing.T) {
			var log []binding
			_, err := Run(context.Background(), set, Options{Profile: "kubehtc", Seed: 1, Targets: map[string]float64{"a": 0.5, "b": 0.5},
				HalfLife: tc.halfLife, OnBind: func(at time.Duration, p *workload.Pod, node string) { log = append(log, binding{p.Name, at, node}) }})
			if err != nil {
				t.Fatal(err)
			}
			a, b := meanWait(log, arrival, "a-"), meanWait(log, arrival, "b-")
			t.Logf("mean wait: a %v, b %v", a, b)
			if got := a < b; got != tc.aFirst {
				t.Errorf("a waits %v, b %v: a served first = %v, want %v", a, b, got, tc.aFirst)
			}
		})
	}
}
