package benchmarks

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubehtc/kubehtc/simulations"
	"github.com/kubehtc/kubehtc/simulations/scenario"
)

var simScenario = flag.String("sim-scenario", "../../simulations/scenarios/nasa-ipsc.yaml", "scenario replayed by BenchmarkSim")

// BenchmarkSim replays the NASA iPSC trace (18,239 jobs) in fast mode on every profile of the scenario and
// reports jobs replayed per wall second, the slowest profile's rate last.
func BenchmarkSim(b *testing.B) {
	s, err := scenario.Load(*simScenario)
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range s.Workloads {
		if w.SWF != nil {
			if _, err := os.Stat(s.Resolve(w.SWF.Path)); err != nil {
				b.Skipf("trace %s is not beside the repository: %v", filepath.Clean(s.Resolve(w.SWF.Path)), err)
			}
		}
	}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		res, err := simulations.Run(ctx, s, simulations.ModeFast, simulations.FastRunner, os.Stdout)
		if err != nil {
			b.Fatal(err)
		}
		jobs, slowest := 0, 0.0
		for _, r := range res.Runs {
			fmt.Printf("%s: %d jobs in %.2fs wall, %.0f jobs/s; cpu utilization %.3f, wait p90 %.0fs, makespan %.0fs\n",
				r.Profile, r.Jobs, r.WallSeconds, r.JobsPerSecond, r.Utilization["cpu"], r.Wait["all"].P90, r.MakespanSeconds)
			if slowest == 0 || r.JobsPerSecond < slowest {
				jobs, slowest = r.Jobs, r.JobsPerSecond
			}
		}
		fmt.Printf("BENCH sim scenario=%s mode=fast jobs=%d jobs_per_s=%.0f\n", s.Name, jobs, slowest)
	}
}
