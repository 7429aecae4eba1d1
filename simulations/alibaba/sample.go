package alibaba

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Sample draws pods from list uniformly with replacement (seeded) until the arrived whole-GPU requests reach
// until × capacityGPUs, the way the ATC'23 paper's simulator (hkust-adsl/kubernetes-scheduler-simulator,
// "workload inflation") extends the trace past the cluster's capacity so that every policy meets saturation.
// CPU-only pods are drawn too, in their share of the list: they compete for the GPU nodes' CPUs. The draw
// that crosses the threshold is the last one.
//
// The arrived workload is counted in whole GPUs, as Kubernetes allocates them: a 0.46-GPU share counts 1. The
// paper counts num_gpu × gpu_milli; on the default list (3,078 of 7,064 GPU pods are fractional) rounding makes
// the same pods 22 % more GPU workload (7,433 GPUs against 6,087), so the axis here reaches capacity with
// fewer pods (see
// docs/gpu-placement.md).
func Sample(list []Pod, capacityGPUs int64, until float64, seed uint64) ([]Pod, error) {
	if capacityGPUs <= 0 {
		return nil, errors.New("the cluster has no GPUs")
	}
	if until <= 0 {
		return nil, fmt.Errorf("until must be positive, got %g", until)
	}
	var listGPUs int64
	for _, p := range list {
		listGPUs += p.WholeGPUs()
	}
	if listGPUs == 0 {
		return nil, errors.New("the pod list requests no GPUs")
	}
	rng := rand.New(rand.NewPCG(seed, 0xa11baba))
	target := until * float64(capacityGPUs)
	var (
		out     []Pod
		arrived int64
	)
	for float64(arrived) < target {
		p := list[rng.IntN(len(list))]
		out = append(out, p)
		arrived += p.WholeGPUs()
	}
	return out, nil
}
