package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The checked-in grid-week.yaml is what the generator writes: regenerate it after changing the generator.
func TestCheckedInScenarioIsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../grid-week.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b.String(), string(got)); diff != "" {
		t.Errorf("simulations/scenarios/grid-week.yaml is stale; run `go run ./simulations/scenarios/grid-week-gen > simulations/scenarios/grid-week.yaml` (-generated,+checked in):\n%s", diff)
	}
}
