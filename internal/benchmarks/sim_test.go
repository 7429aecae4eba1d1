package benchmarks

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kubehtc/kubehtc/simulations"
	"github.com/kubehtc/kubehtc/simulations/scenario"
)

var simScenarios = flag.String("sim-scenarios", "nasa=../../simulations/scenarios/nasa-ipsc.yaml,siteday=../../simulations/scenarios/site-day.yaml,gridweek=../../simulations/scenarios/grid-week.yaml",
	"scenarios replayed by BenchmarkSim, as short-name=path pairs")

// BenchmarkSim replays each scenario (by default the NASA iPSC trace, site-day and grid-week) in fast mode on
// every profile of the scenario and reports jobs replayed per wall second per scenario and profile, and the
// slowest of them. The machine may be shared: each run's user+system CPU time is printed too, and
// jobs per CPU second is the figure that does not depend on what else runs.
func BenchmarkSim(b *testing.B) {
	type named struct {
		short string
		s     *scenario.Scenario
	}
	var scenarios []named
	for _, kv := range strings.Split(*simScenarios, ",") {
		short, path, ok := strings.Cut(kv, "=")
		if !ok {
			b.Fatalf("-sim-scenarios: %q is not short-name=path", kv)
		}
		s, err := scenario.Load(path)
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
		scenarios = append(scenarios, named{short, s})
	}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		line := "BENCH sim"
		slowest, slowestCPU := 0.0, 0.0
		for _, sc := range scenarios {
			cpu0 := cpuTime()
			res, err := simulations.Run(ctx, sc.s, simulations.ModeFast, simulations.FastRunner, os.Stdout)
			if err != nil {
				b.Fatal(err)
			}
			cpu := cpuTime() - cpu0
			wall := 0.0
			for _, r := range res.Runs {
				wall += r.WallSeconds
			}
			for _, r := range res.Runs {
				// CPU time is measured per scenario; each profile is charged its share of the wall time.
				perCPU := float64(r.Jobs) / (cpu.Seconds() * r.WallSeconds / wall)
				fmt.Printf("%s %s: %d jobs in %.2fs wall (%.0f jobs/s, about %.0f jobs per CPU second); cpu utilization %.3f, wait p90 %.0fs, preempted %d, lost %.1f core-h, makespan %.0fs\n",
					sc.s.Name, r.Profile, r.Jobs, r.WallSeconds, r.JobsPerSecond, perCPU, r.Utilization["cpu"], r.Wait["all"].P90, r.Preempted, r.LostCoreHours, r.MakespanSeconds)
				line += fmt.Sprintf(" %s_%s=%.0f", sc.short, strings.TrimSuffix(r.Profile, "-scheduler"), r.JobsPerSecond)
				if slowest == 0 || r.JobsPerSecond < slowest {
					slowest = r.JobsPerSecond
				}
				if slowestCPU == 0 || perCPU < slowestCPU {
					slowestCPU = perCPU
				}
			}
		}
		fmt.Printf("peak RSS %d MiB\n", peakRSS()>>20)
		fmt.Printf("%s min_jobs_per_s=%.0f min_jobs_per_cpu_s=%.0f\n", line, slowest, slowestCPU)
	}
}

// cpuTime is the process's user plus system CPU time so far.
// peakRSS is the process's peak resident set size in bytes (Linux reports KiB).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10
}
