package clustermode

import (
	"context"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/internal/localcluster/quotacomponent"
	"github.com/kubehtc/kubehtc/simulations"
	"github.com/kubehtc/kubehtc/simulations/fast"
	"github.com/kubehtc/kubehtc/simulations/metrics"
	"github.com/kubehtc/kubehtc/simulations/scenario"
	"github.com/kubehtc/kubehtc/simulations/workload"
)

// agree is a small queueing scenario: 40 two-core jobs of 2.5–7.5 minutes arriving every 20 s on average on
// 16 cores (demand about twice the capacity while jobs arrive), until drained; at compression 30 it takes about
// 40 s of wall time per profile. Its cluster is small-shares.yaml's, so that both run on one local cluster.
const agree = `
name: agree
compression: 30
cluster:
  pools:
  - {name: cpu, count: 2, cpu: "8", memory: 32Gi}
workloads:
- generate: {class: analysis, queue: agree, count: 40, every: 20s, cpu: "2", memory: 4Gi, runtime: 5m, runtimeJitter: 0.5}
`

// sharesPath is the fair-share scenario (two queues, two gangs) and sharesRanges its range file.
const (
	sharesPath   = "../scenarios/small-shares.yaml"
	sharesRanges = "../scenarios/small-shares.ranges.yaml"
)

var (
	cluster              *localcluster.Cluster
	scen, sharesScen     *scenario.Scenario
	agreeSet, sharesSets *workload.Set
	schedConfig          []byte
)

func TestMain(m *testing.M) {
	err := func() error {
		var err error
		if scen, err = scenario.Parse([]byte(agree), ""); err != nil {
			return err
		}
		if agreeSet, err = workload.Build(scen); err != nil {
			return err
		}
		if sharesScen, err = scenario.Load(sharesPath); err != nil {
			return err
		}
		if sharesSets, err = workload.Build(sharesScen); err != nil {
			return err
		}
		if schedConfig, err = SchedulerConfig(); err != nil {
			return err
		}
		if !reflect.DeepEqual(agreeSet.Pools, sharesSets.Pools) {
			return fmt.Errorf("%s and the agree scenario must have the same cluster: both run on one local cluster", sharesPath)
		}
		return nil
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(clustertest.Main(m, localcluster.Options{NodePools: agreeSet.Pools, SchedulerConfig: schedConfig, Components: []localcluster.Component{quotacomponent.Component()}}, &cluster))
}

// Tolerances of TestFastAgreesWithCluster. Measured on 2026-11-22 with kube-scheduler's back-off at 1 s
// (SchedulerConfig), fast / cluster in three runs: cpu utilization 0.915 / 0.904-0.908; wait p50 246 s /
// 249-253 s, p90 368 s / 373-377 s; makespan 1538 s / 1553-1562 s. KWOK ends a pod up to about a second of wall time late, 30 s of simulated time at
// compression 30, against runtimes of 150–450 s and waits of minutes: the bounds leave room for a few such
// seconds, not for a different queueing behaviour (with the default 1–10 s back-off the cluster gave cpu 0.80
// and p50 34 s, p90 767 s, and would fail).
const (
	makespanTolerance    = 0.10 // relative
	utilizationTolerance = 0.05 // absolute
	waitTolerance        = 0.20 // relative, p50 and p90
)

// TestFastAgreesWithCluster runs the same small scenario (no queues, until drained) in fast mode and on the
// local cluster with the kubehtc profile. Asserted: every pod runs in both, and makespan, cpu utilization
// and the wait percentiles p50 and p90 agree within the tolerances above.
func TestFastAgreesWithCluster(t *testing.T) {
	clustertest.Require(t, cluster)
	ctx := context.Background()
	f, err := fast.Run(ctx, agreeSet, fast.Options{Profile: "kubehtc", Seed: scen.Seed})
	if err != nil {
		t.Fatal(err)
	}
	c, st, err := RunStats(ctx, cluster, agreeSet, Options{Profile: "kubehtc", Compression: scen.Compression})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fast:    started %d, cpu %.3f, makespan %.0fs, wait p50 %.0fs p90 %.0fs", f.Started, f.Utilization["cpu"], f.MakespanSeconds, f.Wait["all"].P50, f.Wait["all"].P90)
	t.Logf("cluster: started %d, cpu %.3f, makespan %.0fs, wait p50 %.0fs p90 %.0fs (%.1f pods/s wall)", c.Started, c.Utilization["cpu"], c.MakespanSeconds, c.Wait["all"].P50, c.Wait["all"].P90, c.JobsPerSecond)
	t.Logf("cluster %s", st)
	if f.Started != len(agreeSet.Pods) || c.Started != len(agreeSet.Pods) {
		t.Errorf("started: fast %d, cluster %d, want all %d", f.Started, c.Started, len(agreeSet.Pods))
	}
	relative := func(name string, fv, cv, tol float64) {
		if d := math.Abs(fv-cv) / cv; d > tol {
			t.Errorf("%s: fast %.0f, cluster %.0f, differ by %.0f%% > %.0f%%", name, fv, cv, 100*d, 100*tol)
		}
	}
	relative("makespan (s)", f.MakespanSeconds, c.MakespanSeconds, makespanTolerance)
	relative("wait p50 (s)", f.Wait["all"].P50, c.Wait["all"].P50, waitTolerance)
	relative("wait p90 (s)", f.Wait["all"].P90, c.Wait["all"].P90, waitTolerance)
	if d := math.Abs(f.Utilization["cpu"] - c.Utilization["cpu"]); d > utilizationTolerance {
		t.Errorf("cpu utilization: fast %.3f, cluster %.3f, differ by %.3f > %.2f", f.Utilization["cpu"], c.Utilization["cpu"], d, utilizationTolerance)
	}
}

// Tolerances of TestSharesAgree, on delivered CPU share per queue (a fraction of the CPU-seconds delivered in
// the 40 minutes): see the test's comment for where they come from.
const (
	// shareTolerance bounds |fast - cluster| for a queue's delivered share when both modes run the same
	// ordering plugins.
	shareTolerance = 0.12
	// fairShareGain is how much closer to the targets the kubehtc profile must deliver than the
	// default-scheduler profile on the cluster (difference of the largest |delivered - target|). Measured:
	// kubehtc 0.000-0.040, default-scheduler 0.096-0.229, so the worst pair of runs is 0.056 apart.
	fairShareGain = 0.04
)

// TestSharesAgree runs small-shares.yaml (queues atlas 75 / cms 25 with equal demand, two 3-pod gangs in
// atlas, 40 simulated minutes) with both profiles in both modes. Asserted:
//   - the cluster runs stay inside small-shares.ranges.yaml, and the run's Queues and namespaces are gone
//     afterwards;
//   - each profile: each queue's delivered share agrees between fast and cluster mode within shareTolerance.
//     Measured 2026-11-22: atlas's share, default-scheduler 0.549 fast / 0.521-0.654 cluster (nine runs),
//     kubehtc 0.752 / 0.710-0.767. About 36 two-core pods of 10 minutes start in a run, so three pods more or
//     less for one queue move its share by about 0.1: the spread is sampling, not a mode difference. Both
//     modes order pods the same way (FIFO; fair-share rank from the same accounting), on the same arrivals;
//     they differ by the pods KWOK ends up to a second of wall time late (up to 60 s of simulated time at
//     compression 60, against 5–15 min runtimes) and, for kubehtc, by when reclaim's victims leave (at once in
//     fast mode, after their deletion on the cluster);
//   - kubehtc on the cluster: fair share delivers at least fairShareGain closer to the targets than
//     default-scheduler does on the same cluster;
//   - preemption: FairShare reclaim preempts cms pods on the kubehtc profile in both modes (atlas is below
//     its target whenever cms got ahead), and nothing is preempted on the default-scheduler profile (equal
//     priorities, no reclaim). How many is not compared: fast mode 4, the cluster 8–26 per run, because on
//     the cluster a victim's cores are free only after its deletion, while pods keep arriving;
//   - kubehtc gangs: no gang partly placed in either mode, and at least one whole gang started on the
//     cluster (so its PodGroup exists: without it the Gang plugin holds every member). How many gangs start
//     is not compared (fast mode one, the cluster two): a gang member does not preempt (Gang's PostFilter), so
//     the second gang starts only when cores free up for all three at once, which depends on the timing above.
//
// Before FairShare cleared stale nominations, the kubehtc profile stalled on the cluster in some runs (cpu down to
// 0.358, 20 of 86 pods started) and this test failed; that was a scheduler bug (docs/simulations.md, "Fixed: an
// intermittent kubehtc stall"), not a tolerance to widen.
func TestSharesAgree(t *testing.T) {
	clustertest.Require(t, cluster)
	ctx := context.Background()
	targets := simulations.Targets(sharesScen)
	fastRes, clusterRes, stats := map[string]*metrics.Result{}, map[string]*metrics.Result{}, map[string]Stats{}
	for _, profile := range sharesScen.Profiles {
		f, err := fast.Run(ctx, sharesSets, fast.Options{Profile: profile, Duration: sharesScen.DurationOrZero(), Seed: sharesScen.Seed, Targets: targets})
		if err != nil {
			t.Fatal(err)
		}
		c, st, err := RunStats(ctx, cluster, sharesSets, Options{Profile: profile, Compression: sharesScen.Compression,
			Duration: sharesScen.DurationOrZero(), Queues: sharesScen.Queues, Targets: targets})
		if err != nil {
			t.Fatal(err)
		}
		fastRes[profile], clusterRes[profile], stats[profile] = f, c, st
		for _, r := range []*metrics.Result{f, c} {
			t.Logf("%-7s %-17s started %d (gang pods %d), preempted %d, cpu %.3f, wait p50 %.0fs p90 %.0fs, shares %s", r.Mode, profile, r.Started,
				r.Wait["class/gang"].Count, r.Preempted, r.Utilization["cpu"], r.Wait["all"].P50, r.Wait["all"].P90, shares(r))
		}
		t.Logf("cluster %s: %d of %d gangs partly placed, %d pods preempted; %s", profile, st.GangsPartlyPlaced, st.Gangs, st.Preempted, st)
	}

	ranges, err := scenario.LoadRanges(sharesRanges)
	if err != nil {
		t.Fatal(err)
	}
	flat := map[string]float64{}
	for _, r := range clusterRes {
		for k, v := range r.Flat() {
			flat[k] = v
		}
	}
	for _, e := range ranges.Check(flat) {
		t.Errorf("cluster mode out of %s: %v", sharesRanges, e)
	}

	kc, err := client.New(cluster.JSONRESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	var qs kubehtcv1alpha1.QueueList
	if err := kc.List(ctx, &qs); err != nil {
		t.Fatal(err)
	}
	if len(qs.Items) != 0 {
		t.Errorf("%d Queues left after the runs, want none", len(qs.Items))
	}

	compare := func(profile string) {
		f, c := share(fastRes[profile]), share(clusterRes[profile])
		for q := range targets {
			if d := math.Abs(f[q] - c[q]); d > shareTolerance {
				t.Errorf("%s: queue %s delivered share: fast %.3f, cluster %.3f, differ by %.3f > %.2f", profile, q, f[q], c[q], d, shareTolerance)
			}
		}
	}
	compare("default-scheduler")
	compare("kubehtc")

	dev := func(r *metrics.Result) float64 { return *r.ShareDeviation }
	if d, k := dev(clusterRes["default-scheduler"]), dev(clusterRes["kubehtc"]); d-k < fairShareGain {
		t.Errorf("cluster mode: kubehtc's share deviation %.3f is not %.2f below default-scheduler's %.3f", k, fairShareGain, d)
	}
	if n := clusterRes["kubehtc"].Wait["class/gang"].Count; n == 0 || stats["kubehtc"].GangsPartlyPlaced != 0 {
		t.Errorf("cluster mode, kubehtc: %d gang pods started, %d gangs partly placed; want at least one gang, none partly placed", n, stats["kubehtc"].GangsPartlyPlaced)
	}
	for _, r := range []*metrics.Result{fastRes["kubehtc"], clusterRes["kubehtc"]} {
		if r.Preempted == 0 {
			t.Errorf("%s mode, kubehtc: nothing preempted; FairShare reclaim should take cores back from cms for atlas", r.Mode)
		}
	}
	for _, r := range []*metrics.Result{fastRes["default-scheduler"], clusterRes["default-scheduler"]} {
		if r.Preempted != 0 {
			t.Errorf("%s mode, default-scheduler: %d pods preempted, want none (equal priorities)", r.Mode, r.Preempted)
		}
	}
	if n := fastRes["kubehtc"].Wait["class/gang"].Count; n%3 != 0 {
		t.Errorf("fast mode, kubehtc: %d gang pods started, want whole gangs of 3", n)
	}
}

func share(r *metrics.Result) map[string]float64 {
	out := map[string]float64{}
	for _, s := range r.Shares {
		out[s.Queue] = s.Delivered
	}
	return out
}

func shares(r *metrics.Result) string {
	var b strings.Builder
	for _, s := range r.Shares {
		fmt.Fprintf(&b, "%s %.3f/%.2f ", s.Queue, s.Delivered, s.Target)
	}
	return strings.TrimSpace(b.String())
}
