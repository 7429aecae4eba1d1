package simulations

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kubehtc/kubehtc/simulations/fast"
	"github.com/kubehtc/kubehtc/simulations/metrics"
	"github.com/kubehtc/kubehtc/simulations/scenario"
	"github.com/kubehtc/kubehtc/simulations/workload"
)

// Modes of a run.
const (
	ModeFast    = "fast"
	ModeCluster = "cluster"
)

// Results are one scenario's runs, one per profile.
type Results struct {
	Scenario    string             `json:"scenario"`
	Description string             `json:"description,omitempty"`
	Mode        string             `json:"mode"`
	Nodes       int                `json:"nodes"`
	Capacity    map[string]int64   `json:"capacity"`
	Skipped     map[string]int     `json:"skippedInputRecords,omitempty"`
	Targets     map[string]float64 `json:"targets,omitempty"`
	Runs        []*metrics.Result  `json:"runs"`
}

// Flat is every run's scalar metrics, keyed "<profile>/<metric>".
func (r *Results) Flat() map[string]float64 {
	out := map[string]float64{}
	for _, run := range r.Runs {
		for k, v := range run.Flat() {
			out[k] = v
		}
	}
	return out
}

// Targets are the queues' shares normalised to sum to 1.
func Targets(s *scenario.Scenario) map[string]float64 {
	if len(s.Queues) == 0 {
		return nil
	}
	total := 0.0
	for _, q := range s.Queues {
		total += q.Share
	}
	out := map[string]float64{}
	for _, q := range s.Queues {
		out[q.Name] = q.Share / total
	}
	return out
}

// Runner runs a built workload on one profile; the cluster-mode runner plugs in here.
type Runner func(ctx context.Context, s *scenario.Scenario, set *workload.Set, profile string, progress fast.Progress) (*metrics.Result, error)

// FastRunner runs a profile in fast mode.
func FastRunner(ctx context.Context, s *scenario.Scenario, set *workload.Set, profile string, progress fast.Progress) (*metrics.Result, error) {
	return fast.Run(ctx, set, fast.Options{Profile: profile, Duration: s.DurationOrZero(), Seed: s.Seed, Targets: Targets(s),
		HalfLife: s.HalfLife(), AccountingInterval: s.AccountingInterval(), Progress: progress})
}

// Run builds the scenario's workload once and runs it on every profile with runner, printing progress to
// progressOut (nil for none).
func Run(ctx context.Context, s *scenario.Scenario, mode string, runner Runner, progressOut io.Writer) (*Results, error) {
	set, err := workload.Build(s)
	if err != nil {
		return nil, err
	}
	res := &Results{Scenario: s.Name, Description: s.Description, Mode: mode, Nodes: set.Pools.TotalNodes(), Skipped: set.Skipped, Targets: Targets(s), Capacity: map[string]int64{}}
	for _, p := range set.Pools.Pools {
		n := int64(p.Count)
		res.Capacity["gpus"] += n * int64(p.GPUs)
	}
	for _, profile := range s.Profiles {
		bar := newBar(progressOut, s.Name+" "+profile)
		r, err := runner(ctx, s, set, profile, bar.update)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", profile, err)
		}
		bar.finish(r)
		res.Runs = append(res.Runs, r)
	}
	return res, nil
}

// bar prints a one-line progress bar with an ETA.
type bar struct {
	out   io.Writer
	name  string
	start time.Time
	last  time.Time
}

func newBar(out io.Writer, name string) *bar { return &bar{out: out, name: name, start: time.Now()} }

func (b *bar) update(done, total int, simulated time.Duration) {
	if b.out == nil || time.Since(b.last) < 500*time.Millisecond || total == 0 {
		return
	}
	b.last = time.Now()
	f := float64(done) / float64(total)
	const width = 30
	n := int(f * width)
	eta := "?"
	if f > 0 {
		eta = (time.Duration(float64(time.Since(b.start))/f) - time.Since(b.start)).Round(time.Second).String()
	}
	fmt.Fprintf(b.out, "\r%-28s [%-*s] %3.0f%% %d/%d pods, simulated %s, ETA %s   ", b.name, width,
		string(repeat('#', n)), 100*f, done, total, simulated.Round(time.Second), eta)
}

func (b *bar) finish(r *metrics.Result) {
	if b.out == nil {
		return
	}
	fmt.Fprintf(b.out, "\r%-28s done: %d pods in %.1fs wall (%.0f pods/s), makespan %s%s\n", b.name, r.Jobs, r.WallSeconds,
		r.JobsPerSecond, (time.Duration(r.MakespanSeconds) * time.Second).String(), "               ")
}

func repeat(c byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = c
	}
	return out
}
