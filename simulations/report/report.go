// Package report writes the folder of a `kubehtc sim` run: results.json (every figure), report.md (tables and
// links to the plots) and SVG plots with all profiles on the same axes — allocation over time, pending pods over
// time, wait-time CDF and, when the scenario has queues, delivered share against target.
package report

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kubehtc/kubehtc/simulations"
)

// Write creates dir and writes the report of res into it; check holds the range-check failures (nil when the
// scenario has no range file or it was not checked) and checked says whether a check ran.
func Write(dir string, res *simulations.Results, checked bool, check []error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the report folder: %w", err)
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing results.json: %w", err)
	}
	plots := []struct {
		file string
		c    *chart
	}{
		{"utilization.svg", utilization(res)},
		{"pending.svg", pending(res)},
		{"wait-cdf.svg", waitCDF(res)},
	}
	if len(res.Targets) > 0 {
		plots = append(plots, struct {
			file string
			c    *chart
		}{"shares.svg", shares(res)})
	}
	if hasGPUCurve(res) {
		plots = append(plots, struct {
			file string
			c    *chart
		}{"gpu-allocation.svg", gpuAllocation(res)})
	}
	var names []string
	for _, p := range plots {
		f, err := os.Create(filepath.Join(dir, p.file))
		if err != nil {
			return fmt.Errorf("writing %s: %w", p.file, err)
		}
		err = p.c.render(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", p.file, err)
		}
		names = append(names, p.file)
	}
	md := markdown(res, names, checked, check)
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("writing report.md: %w", err)
	}
	return nil
}

// timeAxis picks the unit of the x axis from the longest run.
func timeAxis(res *simulations.Results) (float64, string) {
	end := 0.0
	for _, r := range res.Runs {
		end = max(end, r.MakespanSeconds)
	}
	switch {
	case end > 72*3600:
		return 86400, "simulated days"
	case end > 2*3600:
		return 3600, "simulated hours"
	case end > 120:
		return 60, "simulated minutes"
	}
	return 1, "simulated seconds"
}

func utilization(res *simulations.Results) *chart {
	scale, unit := timeAxis(res)
	c := &chart{title: "Allocated fraction of the cluster", xLabel: unit, yLabel: "allocated / capacity", yMax: 1, xScale: scale}
	for i, r := range res.Runs {
		col := palette[i%len(palette)]
		c.lines = append(c.lines, line{name: r.Profile + " cpu", color: col, xs: r.Series.Seconds, ys: r.Series.CPU})
		if res.Capacity["gpus"] > 0 {
			c.lines = append(c.lines, line{name: r.Profile + " gpu", color: col, dashed: true, xs: r.Series.Seconds, ys: r.Series.GPU})
		}
	}
	return c
}

func pending(res *simulations.Results) *chart {
	scale, unit := timeAxis(res)
	c := &chart{title: "Pending pods", xLabel: unit, yLabel: "pods submitted, not started", xScale: scale}
	for i, r := range res.Runs {
		ys := make([]float64, len(r.Series.Pending))
		for j, v := range r.Series.Pending {
			ys[j] = float64(v)
		}
		c.lines = append(c.lines, line{name: r.Profile, color: palette[i%len(palette)], xs: r.Series.Seconds, ys: ys})
	}
	return c
}

func waitCDF(res *simulations.Results) *chart {
	top := 0.0
	for _, r := range res.Runs {
		top = max(top, r.Wait["all"].P99)
	}
	scale, unit := 1.0, "wait (s)"
	switch {
	case top > 3*3600:
		scale, unit = 3600, "wait (h)"
	case top > 180:
		scale, unit = 60, "wait (min)"
	}
	c := &chart{title: "Wait time CDF (up to the slowest p99)", xLabel: unit, yLabel: "fraction of started pods", yMax: 1, xScale: scale}
	for i, r := range res.Runs {
		var xs, ys []float64
		n := len(r.WaitCDF)
		for j, w := range r.WaitCDF {
			if top > 0 && w > top {
				break
			}
			xs = append(xs, w)
			ys = append(ys, float64(j+1)/float64(n))
		}
		c.lines = append(c.lines, line{name: r.Profile, color: palette[i%len(palette)], xs: xs, ys: ys})
	}
	return c
}

func shares(res *simulations.Results) *chart {
	scale, unit := timeAxis(res)
	c := &chart{title: "CPU share per queue (solid/dashed: profiles; dotted: target)", xLabel: unit, yLabel: "share of allocated cpu", yMax: 1, xScale: scale}
	queues := slices.Sorted(maps.Keys(res.Targets))
	for qi, q := range queues {
		col := palette[qi%len(palette)]
		for ri, r := range res.Runs {
			c.lines = append(c.lines, line{name: q + " " + r.Profile, color: col, dashed: ri > 0, xs: r.Series.Seconds, ys: r.Series.QueueShare[q]})
		}
		if len(res.Runs) > 0 {
			xs := res.Runs[0].Series.Seconds
			c.lines = append(c.lines, line{name: q + " target", color: col, thin: true, xs: []float64{0, xs[len(xs)-1]}, ys: []float64{res.Targets[q], res.Targets[q]}})
		}
	}
	return c
}

func markdown(res *simulations.Results, plots []string, checked bool, check []error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# kubehtc sim: %s (%s mode)\n\n", res.Scenario, res.Mode)
	if res.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", res.Description)
	}
	fmt.Fprintf(&b, "%d nodes. Profiles run on identical input: %s.\n\n", res.Nodes, profiles(res))
	b.WriteString("| profile | pods | started | preempted | makespan | cpu util | gpu util | wait p50 | wait p90 | wait p99 | share dev. | GPU unallocated at 1st GPU failure | pods/s (wall) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range res.Runs {
		w := r.Wait["all"]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %.3f | %s | %s | %s | %s | %s | %s | %.0f |\n", r.Profile, r.Jobs, r.Started,
			r.Preempted, dur(r.MakespanSeconds), r.Utilization["cpu"], opt(r.Utilization, "gpu"), dur(w.P50), dur(w.P90), dur(w.P99),
			ptr(r.ShareDeviation), ptr(r.GPUUnallocatedAtFirstFailure), r.JobsPerSecond)
	}
	for _, r := range res.Runs {
		if g, ok := r.AllocatedAtEnd["gpu"]; ok {
			fmt.Fprintf(&b, "\n%s: %.3f of the GPUs allocated at the end.", r.Profile, g)
		}
	}
	if hasGPUCurve(res) {
		b.WriteString("\n" + gpuCurveTable(res))
	}
	b.WriteString("\n\nUtilization is allocated (requested) capacity averaged over the makespan. Wait is submission to start.\n")
	b.WriteString("Preempted pods were deleted by the scheduler to make room (FairShare reclaim, DefaultPreemption) and resubmitted\n")
	b.WriteString("with their full runtime, as a Job controller or pilot factory would; what they had run is lost work:\n")
	for _, r := range res.Runs {
		fmt.Fprintf(&b, "%s %.1f lost core-hours (%.2f%% of delivered);", r.Profile, r.LostCoreHours, 100*r.LostFraction)
	}
	b.WriteString("\n")
	b.WriteString("Share deviation is the largest |delivered − target| CPU share over queues.\n\n")
	for _, p := range plots {
		fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(p, ".svg"), p)
	}
	b.WriteString("## Wait time per class and queue\n\n| profile | group | pods | p50 | p90 | p99 |\n|---|---|---|---|---|---|\n")
	for _, r := range res.Runs {
		for _, k := range slices.Sorted(maps.Keys(r.Wait)) {
			if k == "all" {
				continue
			}
			w := r.Wait[k]
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s |\n", r.Profile, k, w.Count, dur(w.P50), dur(w.P90), dur(w.P99))
		}
	}
	if len(res.Targets) > 0 {
		b.WriteString("\n## Delivered CPU share (whole run)\n\n| profile | queue | target | delivered |\n|---|---|---|---|\n")
		for _, r := range res.Runs {
			for _, s := range r.Shares {
				fmt.Fprintf(&b, "| %s | %s | %.3f | %.3f |\n", r.Profile, s.Queue, s.Target, s.Delivered)
			}
		}
	}
	notes := false
	for _, r := range res.Runs {
		for _, n := range r.Notes {
			if !notes {
				b.WriteString("\n## What this run does not model\n\n")
				notes = true
			}
			fmt.Fprintf(&b, "- %s: %s\n", r.Profile, n)
		}
	}
	if len(res.Skipped) > 0 {
		b.WriteString("\n## Input records skipped\n\n")
		for _, k := range slices.Sorted(maps.Keys(res.Skipped)) {
			fmt.Fprintf(&b, "- %s: %d\n", k, res.Skipped[k])
		}
	}
	if checked {
		b.WriteString("\n## Range check\n\n")
		if len(check) == 0 {
			b.WriteString("Every metric is inside its range (the scenario's range file).\n")
		}
		for _, e := range check {
			fmt.Fprintf(&b, "- FAIL %s\n", e)
		}
	}
	return b.String()
}

func profiles(res *simulations.Results) string {
	var out []string
	for _, r := range res.Runs {
		out = append(out, r.Profile)
	}
	return strings.Join(out, ", ")
}

func dur(s float64) string {
	switch {
	case s >= 86400:
		return fmt.Sprintf("%.1fd", s/86400)
	case s >= 3600:
		return fmt.Sprintf("%.1fh", s/3600)
	case s >= 60:
		return fmt.Sprintf("%.1fm", s/60)
	}
	return fmt.Sprintf("%.0fs", s)
}

func opt(m map[string]float64, k string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprintf("%.3f", v)
	}
	return "–"
}

func ptr(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.3f", *v)
}
