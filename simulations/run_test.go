package simulations_test

import (
	"context"
	"testing"

	"github.com/kubehtc/kubehtc/simulations"
	"github.com/kubehtc/kubehtc/simulations/scenario"
)

// TestSmallScenarioInRange runs the small scenario in fast mode on every profile and checks its range file, as
// `kubehtc sim --check simulations/scenarios/small.yaml` does.
func TestSmallScenarioInRange(t *testing.T) {
	s, err := scenario.Load("scenarios/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := scenario.LoadRanges("scenarios/small.ranges.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := simulations.Run(context.Background(), s, simulations.ModeFast, simulations.FastRunner, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != len(s.Profiles) {
		t.Fatalf("%d runs, want one per profile (%v)", len(res.Runs), s.Profiles)
	}
	for _, e := range ranges.Check(res.Flat()) {
		t.Error(e)
	}
	for _, r := range res.Runs {
		t.Logf("%s: cpu %.3f, wait p90 %.0fs, makespan %.0fs; %v", r.Profile, r.Utilization["cpu"], r.Wait["all"].P90, r.MakespanSeconds, r.Notes)
	}
}

// TestScenariosLoad keeps the checked-in scenarios and range files valid.
func TestScenariosLoad(t *testing.T) {
	for _, name := range []string{"small", "site-day", "nasa-ipsc", "alibaba-gpu", "alibaba-gpuspec20", "alibaba-multigpu30"} {
		if _, err := scenario.Load("scenarios/" + name + ".yaml"); err != nil {
			t.Error(err)
		}
	}
}
