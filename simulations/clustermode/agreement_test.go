package clustermode

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/simulations/fast"
	"github.com/kubehtc/kubehtc/simulations/scenario"
	"github.com/kubehtc/kubehtc/simulations/workload"
)

// agree is a small queueing scenario: 40 two-core jobs of 2.5–7.5 minutes arriving every 20 s on average on
// 16 cores (demand about twice the capacity while jobs arrive), until drained; at compression 30 it takes about
// 40 s of wall time per profile.
const agree = `
name: agree
compression: 30
cluster:
  pools:
  - {name: cpu, count: 2, cpu: "8", memory: 32Gi}
workloads:
- generate: {class: analysis, queue: agree, count: 40, every: 20s, cpu: "2", memory: 4Gi, runtime: 5m, runtimeJitter: 0.5}
`

var (
	cluster *localcluster.Cluster
	scen    *scenario.Scenario
	set     *workload.Set
)

func TestMain(m *testing.M) {
	var err error
	if scen, err = scenario.Parse([]byte(agree), ""); err == nil {
		set, err = workload.Build(scen)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(clustertest.Main(m, localcluster.Options{NodePools: set.Pools}, &cluster))
}

// TestFastAgreesWithCluster runs the same small scenario in fast mode and on the local cluster with the kubehtc
// profile. Asserted: every pod runs in both, and the makespans agree within 15% (KWOK ends a pod up to about a
// second of wall time late, 30 s of simulated time at compression 30, against runtimes of 150–450 s).
//
// Not yet within a tolerance, so only logged: on 2026-11-22 fast mode gave cpu 0.915, wait p50 246 s, p90
// 368 s; cluster mode cpu 0.797, p50 34 s, p90 767 s. Fast mode retries pending pods in strict queue order at
// every completion; kube-scheduler parks unschedulable pods with back-off, so newer pods pass them (lower p50,
// longer tail) and capacity sits idle during back-off (lower utilization). Modelling back-off in fast mode is
// the next step (docs/simulations.md).
func TestFastAgreesWithCluster(t *testing.T) {
	clustertest.Require(t, cluster)
	ctx := context.Background()
	f, err := fast.Run(ctx, set, fast.Options{Profile: "kubehtc", Seed: scen.Seed})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Run(ctx, cluster, set, Options{Profile: "kubehtc", Compression: scen.Compression})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fast:    started %d, cpu %.3f, makespan %.0fs, wait p50 %.0fs p90 %.0fs", f.Started, f.Utilization["cpu"], f.MakespanSeconds, f.Wait["all"].P50, f.Wait["all"].P90)
	t.Logf("cluster: started %d, cpu %.3f, makespan %.0fs, wait p50 %.0fs p90 %.0fs (%.1f pods/s wall)", c.Started, c.Utilization["cpu"], c.MakespanSeconds, c.Wait["all"].P50, c.Wait["all"].P90, c.JobsPerSecond)
	if f.Started != len(set.Pods) || c.Started != len(set.Pods) {
		t.Errorf("started: fast %d, cluster %d, want all %d", f.Started, c.Started, len(set.Pods))
	}
	if d := math.Abs(f.MakespanSeconds-c.MakespanSeconds) / c.MakespanSeconds; d > 0.15 {
		t.Errorf("makespan: fast %.0fs, cluster %.0fs, differ by %.0f%% > 15%%", f.MakespanSeconds, c.MakespanSeconds, 100*d)
	}
}
