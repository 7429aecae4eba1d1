package gang

import (
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
	fwk "k8s.io/kube-scheduler/framework"
)

// request is what one pod asks of a node: milli-CPU, memory bytes and extended resources.
type request struct {
	milliCPU int64
	memory   int64
	scalar   map[v1.ResourceName]int64
}

func podRequest(pod *v1.Pod) request {
	rl := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	r := request{milliCPU: rl.Cpu().MilliValue(), memory: rl.Memory().Value()}
	for name, q := range rl {
		if name == v1.ResourceCPU || name == v1.ResourceMemory || name == v1.ResourceEphemeralStorage || name == v1.ResourcePods {
			continue
		}
		if r.scalar == nil {
			r.scalar = map[v1.ResourceName]int64{}
		}
		r.scalar[name] = q.Value()
	}
	return r
}

func (r *request) add(o request) {
	r.milliCPU += o.milliCPU
	r.memory += o.memory
	for k, v := range o.scalar {
		if r.scalar == nil {
			r.scalar = map[v1.ResourceName]int64{}
		}
		r.scalar[k] += v
	}
}

// String is the request as a person reads it: "4 cpu, 8Gi memory, 1 nvidia.com/gpu".
func (r request) String() string {
	parts := []string{resource.NewMilliQuantity(r.milliCPU, resource.DecimalSI).String() + " cpu"}
	if r.memory > 0 {
		parts = append(parts, resource.NewQuantity(r.memory, resource.BinarySI).String()+" memory")
	}
	names := make([]string, 0, len(r.scalar))
	for n := range r.scalar {
		names = append(names, string(n))
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%d %s", r.scalar[v1.ResourceName(n)], n))
	}
	return strings.Join(parts, ", ")
}

// fits reports whether r fits in the node's allocatable minus its requested resources minus extra (resources
// promised elsewhere), and which resource does not fit.
func fits(ni fwk.NodeInfo, r request, extra request) (bool, string) {
	alloc, used := ni.GetAllocatable(), ni.GetRequested()
	if r.milliCPU > 0 && alloc.GetMilliCPU()-used.GetMilliCPU()-extra.milliCPU < r.milliCPU {
		return false, "cpu"
	}
	if r.memory > 0 && alloc.GetMemory()-used.GetMemory()-extra.memory < r.memory {
		return false, "memory"
	}
	for name, v := range r.scalar {
		if alloc.GetScalarResources()[name]-used.GetScalarResources()[name]-extra.scalar[name] < v {
			return false, string(name)
		}
	}
	return true, ""
}

// reservation is one placed, not yet assumed gang member: the capacity it will take on its node.
type reservation struct {
	gang string
	pod  *v1.Pod // a copy with spec.nodeName set to the node
	req  request
}

// gangState is what the plugin remembers of one gang between scheduling cycles.
type gangState struct {
	// plan maps each placed member that has not reached Reserve yet to its node.
	plan map[types.UID]string
	// deadline ends the placement and the members' wait at Permit.
	deadline time.Time
	// assumed are members that passed Reserve (assumed or bound), with when they did.
	assumed map[types.UID]time.Time
	// failedGeneration is the snapshot generation at the gang's last failed placement, failure its message:
	// other members of the gang fail at once while the cluster has not changed.
	failedGeneration int64
	failure          string
	lastEvent        time.Time
}

func newGangState() *gangState {
	return &gangState{plan: map[types.UID]string{}, assumed: map[types.UID]time.Time{}}
}
