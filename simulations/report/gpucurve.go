package report

import (
	"fmt"
	"strings"

	"github.com/kubehtc/kubehtc/simulations"
	"github.com/kubehtc/kubehtc/simulations/metrics"
)

// hasGPUCurve says whether any run recorded the allocation ratio against arrived GPU workload.
func hasGPUCurve(res *simulations.Results) bool {
	for _, r := range res.Runs {
		if len(r.GPUCurve) > 0 {
			return true
		}
	}
	return false
}

// gpuAllocation is the ATC'23 paper's figure: GPU allocation ratio against arrived GPU workload, both in % of
// the cluster's GPUs, one line per profile; the thin diagonal is "every arrived GPU allocated".
func gpuAllocation(res *simulations.Results) *chart {
	c := &chart{title: "GPU allocation ratio vs arrived GPU workload (ATC'23 Fig. style)", xLabel: "arrived GPU workload (% of GPUs)",
		yLabel: "allocated GPUs (% of GPUs)", yMax: 100, xScale: 1}
	top := 0.0
	for i, r := range res.Runs {
		var xs, ys []float64
		for _, p := range r.GPUCurve {
			xs, ys = append(xs, 100*p.Arrived), append(ys, 100*p.Allocated)
			top = max(top, 100*p.Arrived)
		}
		c.lines = append(c.lines, line{name: r.Profile, color: palette[i%len(palette)], xs: xs, ys: ys})
	}
	c.lines = append(c.lines, line{name: "all placed", color: "#999999", thin: true, dashed: true, xs: []float64{0, min(top, 100)}, ys: []float64{0, min(top, 100)}})
	return c
}

// gpuCurveTable gives the curve at the levels the range files check.
func gpuCurveTable(res *simulations.Results) string {
	var b strings.Builder
	b.WriteString("\n## GPU allocation against arrived GPU workload\n\n")
	b.WriteString("Arrived workload and allocation are in whole GPUs (fractional requests round up to one GPU), as fractions of the cluster's GPUs; unallocated = 1 − allocated.\n\n")
	b.WriteString("| profile | pods placed |")
	sep := "|---|---|"
	for _, l := range metrics.GPUCurveLevels {
		fmt.Fprintf(&b, " alloc. at %.0f%% | unalloc. at %.0f%% |", 100*l, 100*l)
		sep += "---|---|"
	}
	b.WriteString("\n" + sep + "\n")
	for _, r := range res.Runs {
		fmt.Fprintf(&b, "| %s | %d |", r.Profile, r.Started)
		for _, l := range metrics.GPUCurveLevels {
			if a, ok := metrics.AllocatedAt(r.GPUCurve, l); ok {
				fmt.Fprintf(&b, " %.3f | %.3f |", a, 1-a)
			} else {
				b.WriteString(" – | – |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
