package metrics

import (
	"fmt"
	"sort"
)

// GPUPoint is one point of the ATC'23 paper's evaluation figure: the GPU requests that have arrived so far
// and the GPUs allocated, both as fractions of the cluster's GPUs. Unallocated GPUs are 1 − Allocated.
type GPUPoint struct {
	Arrived   float64 `json:"arrived"`
	Allocated float64 `json:"allocated"`
}

// GPUCurveLevels are the arrived-workload levels (fractions of GPU capacity) whose allocation ratio the flat
// results carry as gpu_allocated_at_<pct>pct_arrived and gpu_unallocated_at_<pct>pct_arrived.
var GPUCurveLevels = []float64{0.5, 0.7, 0.8, 0.9, 0.95, 1.0}

// gpuCurveStep is the arrived-workload step between recorded points (0.5 % of capacity).
const gpuCurveStep = 0.005

// gpuCurve records the allocation ratio against arrived GPU requests.
type gpuCurve struct {
	arrived int64
	points  []GPUPoint
}

// arrive is called before a pod of gpus GPUs arrives, with the GPUs allocated then: the point is the outcome
// of every earlier arrival. A point is kept each time the arrived workload crosses another gpuCurveStep.
func (c *gpuCurve) arrive(gpus, allocated, capacity int64) {
	if gpus <= 0 || capacity <= 0 {
		return
	}
	x := frac(float64(c.arrived), capacity)
	if n := len(c.points); n == 0 || x >= c.points[n-1].Arrived+gpuCurveStep {
		c.points = append(c.points, GPUPoint{Arrived: x, Allocated: frac(float64(allocated), capacity)})
	}
	c.arrived += gpus
}

// result returns the points with a last one for the end of the run, or nil when no GPU pod arrived.
func (c *gpuCurve) result(allocated, capacity int64) []GPUPoint {
	if len(c.points) == 0 {
		return nil
	}
	return append(c.points, GPUPoint{Arrived: frac(float64(c.arrived), capacity), Allocated: frac(float64(allocated), capacity)})
}

// AllocatedAt is the allocation ratio once the arrived workload first reached level (the first point at or
// past it), and whether the run got that far.
func AllocatedAt(curve []GPUPoint, level float64) (float64, bool) {
	i := sort.Search(len(curve), func(i int) bool { return curve[i].Arrived >= level-1e-9 })
	if i == len(curve) {
		return 0, false
	}
	return curve[i].Allocated, true
}

// putGPUCurve adds the curve's levels to flat results.
func putGPUCurve(curve []GPUPoint, put func(string, float64)) {
	for _, l := range GPUCurveLevels {
		if a, ok := AllocatedAt(curve, l); ok {
			pct := fmt.Sprintf("%.0f", l*100)
			put("gpu_allocated_at_"+pct+"pct_arrived", a)
			put("gpu_unallocated_at_"+pct+"pct_arrived", 1-a)
		}
	}
}
