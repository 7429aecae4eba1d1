package gpufrag

import (
	"cmp"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"sync"
)

// Distribution is the running distribution of the GPU pods seen, by class: whole GPUs, accepted models, and
// CPU in power-of-two buckets of cores (a class's CPU and memory are the means of its pods). Nothing in it is
// fitted to a trace: it starts empty and learns from the pods the scheduler is asked to place, counting each
// pod once however often it is retried, unplaceable ones included (those are the ones fragmentation hurts).
//
// It is safe for concurrent use. Memory is bounded: at most maxSeen pod identities are kept for
// de-duplication (then forgotten, so a pod retried after that counts again) and classes are few (the product
// of GPU counts, model sets and CPU buckets in the workload; tens on the Alibaba trace).
type Distribution struct {
	mu      sync.Mutex
	seen    map[string]struct{}
	classes map[classKey]*acc
	total   float64
	cache   []Class
}

type classKey struct {
	gpus   int64
	models string
	cpu    int
}

type acc struct {
	n, milliCPU, memory float64
	models              []string
}

const maxSeen = 1 << 17

// NewDistribution returns an empty distribution.
func NewDistribution() *Distribution {
	return &Distribution{seen: map[string]struct{}{}, classes: map[classKey]*acc{}}
}

// Observe counts a pod (identified by id, e.g. its UID) of shape s, once; pods without GPUs are ignored (see
// the package doc).
func (d *Distribution) Observe(id string, s Shape) {
	if s.GPUs <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.seen[id]; ok {
		return
	}
	if len(d.seen) >= maxSeen {
		clear(d.seen)
	}
	d.seen[id] = struct{}{}
	k := classKey{gpus: s.GPUs, models: modelsKey(s.Models), cpu: bits.Len64(uint64(max(s.MilliCPU, 0)) / 1000)}
	a := d.classes[k]
	if a == nil {
		a = &acc{}
		if k.models != "" {
			a.models = strings.Split(k.models, "|")
		}
		d.classes[k] = a
	}
	a.n++
	a.milliCPU += float64(s.MilliCPU)
	a.memory += float64(s.Memory)
	d.total++
	d.cache = nil
}

// Classes returns the classes with their shares (summing to 1), or nil before the first GPU pod. The slice is
// shared until the next Observe: callers must not modify it.
func (d *Distribution) Classes() []Class {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cache != nil || d.total == 0 {
		return d.cache
	}
	keys := slices.SortedFunc(maps.Keys(d.classes), func(a, b classKey) int {
		return cmp.Or(cmp.Compare(a.gpus, b.gpus), cmp.Compare(a.models, b.models), cmp.Compare(a.cpu, b.cpu))
	})
	// In a fixed order, so that sums (and so ties between nodes) do not depend on map iteration.
	out := make([]Class, 0, len(keys))
	for _, k := range keys {
		a := d.classes[k]
		out = append(out, Class{
			Shape: Shape{GPUs: k.gpus, MilliCPU: int64(a.milliCPU / a.n), Memory: int64(a.memory / a.n), Models: a.models},
			P:     a.n / d.total,
		})
	}
	d.cache = out
	return out
}
