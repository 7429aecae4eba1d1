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
	os.Exit(clustertest.Main(m, localcluster.Options{NodePools: agreeSet.Pools, SchedulerConfig: schedConfig, Components: []localcluster.Component{QuotaController()}}, &cluster))
}

// TestFastAgreesWithCluster runs the same small scenario (no queues, until drained) in fast mode and on the
// local cluster with the kubehtc profile. Asserted: every pod runs in both, and the makespans agree within 15%
// (KWOK ends a pod up to about a second of wall time late, 30 s of simulated time at compression 30, against
// runtimes of 150–450 s).
//
// Not within a tolerance, so only logged (figures and causes in docs/simulations.md, "Cluster mode: fair
// share, gangs and agreement"): utilization and wait percentiles. Fast mode retries pending pods in strict
// queue order at every completion; kube-scheduler parks unschedulable pods with back-off, so newer pods pass
// them (lower p50, longer tail) and capacity sits idle during back-off (lower utilization).
func TestFastAgreesWithCluster(t *testing.T) {
	clustertest.Require(t, cluster)
	ctx := context.Background()
	f, err := fast.Run(ctx, agreeSet, fast.Options{Profile: "kubehtc", Seed: scen.Seed})
	if err != nil {
		t.Fatal(err)
	}
	c, tm, err := RunTimed(ctx, cluster, agreeSet, Options{Profile: "kubehtc", Compression: scen.Compression})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fast:    started %d, cpu %.3f, makespan %.0fs, wait p50 %.0fs p90 %.0fs", f.Started, f.Utilization["cpu"], f.MakespanSeconds, f.Wait["all"].P50, f.Wait["all"].P90)
	t.Logf("cluster: started %d, cpu %.3f, makespan %.0fs, wait p50 %.0fs p90 %.0fs (%.1f pods/s wall)", c.Started, c.Utilization["cpu"], c.MakespanSeconds, c.Wait["all"].P50, c.Wait["all"].P90, c.JobsPerSecond)
	t.Logf("cluster %s", tm)
	if f.Started != len(agreeSet.Pods) || c.Started != len(agreeSet.Pods) {
		t.Errorf("started: fast %d, cluster %d, want all %d", f.Started, c.Started, len(agreeSet.Pods))
	}
	if d := math.Abs(f.MakespanSeconds-c.MakespanSeconds) / c.MakespanSeconds; d > 0.15 {
		t.Errorf("makespan: fast %.0fs, cluster %.0fs, differ by %.0f%% > 15%%", f.MakespanSeconds, c.MakespanSeconds, 100*d)
	}
}

// Tolerances of TestSharesAgree, on delivered CPU share per queue (a fraction of the CPU-seconds delivered in
// the 40 minutes): see the test's comment for where they come from.
const (
	// shareTolerance bounds |fast - cluster| for a queue's delivered share when both modes run the same
	// ordering plugins.
	shareTolerance = 0.06
	// fairShareGain is how much closer to the targets the kubehtc profile must deliver than the
	// default-scheduler profile on the cluster (difference of the largest |delivered - target|).
	fairShareGain = 0.1
)

// TestSharesAgree runs small-shares.yaml (queues atlas 75 / cms 25 with equal demand, two 3-pod gangs in
// atlas, 40 simulated minutes) with both profiles in both modes. Asserted:
//   - the cluster runs stay inside small-shares.ranges.yaml, and the run's Queues and namespaces are gone
//     afterwards;
//   - default-scheduler (first come, first served in both modes): each queue's delivered share agrees between
//     fast and cluster mode within shareTolerance (measured gap 2026-11-22: see docs/simulations.md; the
//     share follows arrival order, which is identical, and differs by the pods KWOK ends up to a second of
//     wall time late, i.e. up to 60 s of simulated time at compression 60, against 5–15 min runtimes);
//   - kubehtc on the cluster: fair share delivers at least fairShareGain closer to the targets than
//     default-scheduler does on the same cluster, and gang pods start in whole gangs of 3 (the PodGroups
//     exist, otherwise the Gang plugin would hold every member);
//   - kubehtc in fast mode is compared like default-scheduler only once fast mode runs the FairShare and
//     QueueOrder plugins (its notes say when they are not run); until then its shares are logged.
func TestSharesAgree(t *testing.T) {
	clustertest.Require(t, cluster)
	ctx := context.Background()
	targets := simulations.Targets(sharesScen)
	fastRes, clusterRes := map[string]*metrics.Result{}, map[string]*metrics.Result{}
	for _, profile := range sharesScen.Profiles {
		f, err := fast.Run(ctx, sharesSets, fast.Options{Profile: profile, Duration: sharesScen.DurationOrZero(), Seed: sharesScen.Seed, Targets: targets})
		if err != nil {
			t.Fatal(err)
		}
		c, tm, err := RunTimed(ctx, cluster, sharesSets, Options{Profile: profile, Compression: sharesScen.Compression,
			Duration: sharesScen.DurationOrZero(), Queues: sharesScen.Queues, Targets: targets})
		if err != nil {
			t.Fatal(err)
		}
		fastRes[profile], clusterRes[profile] = f, c
		for _, r := range []*metrics.Result{f, c} {
			t.Logf("%-7s %-17s started %d (gang pods %d), cpu %.3f, wait p50 %.0fs p90 %.0fs, shares %s", r.Mode, profile, r.Started,
				r.Wait["class/gang"].Count, r.Utilization["cpu"], r.Wait["all"].P50, r.Wait["all"].P90, shares(r))
		}
		t.Logf("cluster %s %s", profile, tm)
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
	if notRun := missingPlugins(fastRes["kubehtc"], "FairShare", "QueueOrder"); len(notRun) > 0 {
		t.Logf("kubehtc shares not compared: fast mode does not run %s", strings.Join(notRun, ", "))
	} else {
		compare("kubehtc")
	}

	dev := func(r *metrics.Result) float64 { return *r.ShareDeviation }
	if d, k := dev(clusterRes["default-scheduler"]), dev(clusterRes["kubehtc"]); d-k < fairShareGain {
		t.Errorf("cluster mode: kubehtc's share deviation %.3f is not %.2f below default-scheduler's %.3f", k, fairShareGain, d)
	}
	if n := clusterRes["kubehtc"].Wait["class/gang"].Count; n == 0 || n%3 != 0 {
		t.Errorf("cluster mode, kubehtc: %d gang pods started, want whole gangs of 3 (at least one)", n)
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

// missingPlugins returns those of names that a fast-mode result's notes report as not run.
func missingPlugins(r *metrics.Result, names ...string) []string {
	var out []string
	for _, n := range names {
		for _, note := range r.Notes {
			if strings.HasPrefix(note, "plugin "+n+" not run") {
				out = append(out, n)
				break
			}
		}
	}
	return out
}
