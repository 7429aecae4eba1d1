package scenario_test

import (
	"testing"
	"time"

	"github.com/kubehtc/kubehtc/simulations/scenario"
	"github.com/kubehtc/kubehtc/simulations/workload"
)

// grid-week is what its generator's comment promises: at least 100,000 jobs from at least 20 VOs with very
// unequal weights, single-core and 8-core shapes, runtimes from minutes to 24 h under declared walltimes,
// demand at least 1.4 x capacity over the week, and VOs that are idle for days and then return.
func TestGridWeek(t *testing.T) {
	s, err := scenario.Load("../scenarios/grid-week.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := workload.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(set.Pods); n < 100_000 {
		t.Errorf("%d jobs, want at least 100,000", n)
	}
	minW, maxW := s.Queues[0].Share, s.Queues[0].Share
	for _, q := range s.Queues {
		minW, maxW = min(minW, q.Share), max(maxW, q.Share)
	}
	if len(s.Queues) < 20 || maxW < 100*minW {
		t.Errorf("%d VOs with weights %v to %v, want at least 20 and a ratio of at least 100", len(s.Queues), minW, maxW)
	}
	var capacity int64
	for _, p := range s.Cluster.Pools {
		capacity += int64(p.Count) * 1000 * int64(mustCores(t, p.CPU))
	}
	week := s.DurationOrZero()
	var demand float64 // milli-CPU·hours
	shapes := map[int64]int{}
	minRT, maxRT := time.Duration(1<<62), time.Duration(0)
	arrivals := map[string][]time.Duration{}
	for _, p := range set.Pods {
		demand += float64(p.MilliCPU) * p.Runtime.Hours()
		shapes[p.MilliCPU]++
		minRT, maxRT = min(minRT, p.Runtime), max(maxRT, p.Runtime)
		if p.Walltime < p.Runtime {
			t.Fatalf("pod %s declares walltime %v below its runtime %v", p.Name, p.Walltime, p.Runtime)
		}
		arrivals[p.Queue] = append(arrivals[p.Queue], p.Arrival)
	}
	if f := demand / (float64(capacity) * week.Hours()); f < 1.4 {
		t.Errorf("demand is %.2f x capacity, want at least 1.4", f)
	}
	if shapes[1000] == 0 || shapes[8000] == 0 || len(shapes) != 2 {
		t.Errorf("pods by milli-CPU %v, want single-core and 8-core only", shapes)
	}
	if minRT > 10*time.Minute || maxRT < 20*time.Hour || maxRT > 24*time.Hour {
		t.Errorf("runtimes %v to %v, want minutes to 24 h", minRT, maxRT)
	}
	returning := 0
	for _, as := range arrivals {
		for i := 1; i < len(as); i++ {
			if as[i]-as[i-1] >= 48*time.Hour {
				returning++
				break
			}
		}
	}
	if returning < 3 {
		t.Errorf("%d VOs idle for two days or more between arrivals, want at least 3", returning)
	}
}

func mustCores(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("pool cpu %q is not a whole number of cores", s)
		}
		n = 10*n + int(c-'0')
	}
	return n
}
