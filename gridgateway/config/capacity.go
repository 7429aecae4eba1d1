package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// CRDBounds are the most one GridJob may ask for: the API server refuses more (the kubebuilder Maximum
// markers of GridJobDescription in apis/kubehtc/v1alpha1; TestCRDBoundsMatchTheCRD reads them back from
// deploy/crds). A limit above them would let the gateway accept what the API server then refuses.
var CRDBounds = Limits{MaxCores: 1024, MaxMemoryMiB: 16777216, MaxWallTimeSeconds: 31536000, MaxDiskMiB: 16777216, MaxGPUs: 64}

// limitFields lists Limits' fields with their YAML names.
func (l Limits) fields() []struct {
	name string
	v    int64
} {
	return []struct {
		name string
		v    int64
	}{
		{"maxCores", int64(l.MaxCores)}, {"maxMemoryMiB", l.MaxMemoryMiB}, {"maxWallTimeSeconds", l.MaxWallTimeSeconds},
		{"maxDiskMiB", l.MaxDiskMiB}, {"maxGPUs", int64(l.MaxGPUs)},
	}
}

// validateBounds checks one limits block against zero and the CRD bounds; path names it ("limits",
// "queues[0] (atlas-prod) limits").
func (l Limits) validateBounds(path string) []error {
	var errs []error
	bounds := CRDBounds.fields()
	for i, f := range l.fields() {
		switch {
		case f.v < 0:
			errs = append(errs, fmt.Errorf("%s.%s %d: must not be negative (0 means the default)", path, f.name, f.v))
		case f.v > bounds[i].v:
			errs = append(errs, fmt.Errorf("%s.%s %d: above %d, the most a GridJob may ask for (the CRD's bound)", path, f.name, f.v, bounds[i].v))
		}
	}
	return errs
}

// validateQueueBounds checks the site's and every queue's limits and defaults against the CRD bounds.
func (s *Site) validateQueueBounds() []error {
	errs := s.Limits.validateBounds("limits")
	for i := range s.Queues {
		q := &s.Queues[i]
		path := fmt.Sprintf("queues[%d] (%s)", i, q.Name)
		errs = append(errs, q.Limits.validateBounds(path+" limits")...)
		eff := s.EffectiveLimits(q)
		if q.DefaultWallTimeSeconds < 0 || q.DefaultWallTimeSeconds > eff.MaxWallTimeSeconds {
			errs = append(errs, fmt.Errorf("%s defaultWallTimeSeconds %d: must lie in [0, %d] (the queue's maxWallTimeSeconds)", path, q.DefaultWallTimeSeconds, eff.MaxWallTimeSeconds))
		}
		if q.DefaultMemoryMiBPerCore < 0 || q.DefaultMemoryMiBPerCore > eff.MaxMemoryMiB {
			errs = append(errs, fmt.Errorf("%s defaultMemoryMiBPerCore %d: must lie in [0, %d] (the queue's maxMemoryMiB)", path, q.DefaultMemoryMiBPerCore, eff.MaxMemoryMiB))
		}
	}
	return errs
}

// NodeSize is what one schedulable node offers a Pod (its allocatable resources) and its labels.
type NodeSize struct {
	Name      string
	Labels    map[string]string
	Cores     int64 // whole cores
	MemoryMiB int64
	DiskMiB   int64 // ephemeral storage
	GPUs      int64
}

// largest returns, per resource, the most any node matching selector offers, and how many nodes match.
func largest(nodes []NodeSize, selector map[string]string) (Limits, int) {
	var l Limits
	n := 0
	for _, nd := range nodes {
		match := true
		for k, v := range selector {
			if nd.Labels[k] != v {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		n++
		l.MaxCores = max(l.MaxCores, int32(min(nd.Cores, 1<<30)))
		l.MaxMemoryMiB = max(l.MaxMemoryMiB, nd.MemoryMiB)
		l.MaxDiskMiB = max(l.MaxDiskMiB, nd.DiskMiB)
		l.MaxGPUs = max(l.MaxGPUs, int32(min(nd.GPUs, 1<<30)))
	}
	return l, n
}

// CheckNodes checks every limit the configuration sets (a queue's own, or the site's) against the
// cluster's nodes: a queue's limit above what its largest matching node offers would accept jobs that can
// never run. Built-in defaults are not checked (they are clamped where published: see NodeLimits). No nodes
// at all is not an error (a cluster still coming up).
func (s *Site) CheckNodes(nodes []NodeSize) error {
	if len(nodes) == 0 {
		return nil
	}
	var errs []error
	for i := range s.Queues {
		q := &s.Queues[i]
		path := fmt.Sprintf("queues[%d] (%s)", i, q.Name)
		big, n := largest(nodes, q.NodeSelector)
		if n == 0 {
			errs = append(errs, fmt.Errorf("%s nodeSelector %s: no node of the cluster matches", path, selectorString(q.NodeSelector)))
			continue
		}
		check := func(field string, qv, sv, have int64, unit string) {
			v, where := qv, path+" limits."+field
			if v == 0 {
				v, where = sv, "limits."+field+" (the site's, for "+q.Name+")"
			}
			if v > 0 && v > have {
				errs = append(errs, fmt.Errorf("%s %d: the largest node %sof the cluster has %d %s", where, v, matching(q.NodeSelector), have, unit))
			}
		}
		check("maxCores", int64(q.Limits.MaxCores), int64(s.Limits.MaxCores), int64(big.MaxCores), "allocatable cores")
		check("maxMemoryMiB", q.Limits.MaxMemoryMiB, s.Limits.MaxMemoryMiB, big.MaxMemoryMiB, "MiB of allocatable memory")
		if big.MaxDiskMiB > 0 { // nodes that report no ephemeral storage are not judged
			check("maxDiskMiB", q.Limits.MaxDiskMiB, s.Limits.MaxDiskMiB, big.MaxDiskMiB, "MiB of allocatable ephemeral storage")
		}
		check("maxGPUs", int64(q.Limits.MaxGPUs), int64(s.Limits.MaxGPUs), int64(big.MaxGPUs), "allocatable GPUs")
	}
	return errors.Join(errs...)
}

// NodeLimits are the queue's effective limits clamped to its largest matching node: what one job of the
// queue can really get (GLUE2 publishes these). ok is false when no node matches.
func (s *Site) NodeLimits(q *Queue, nodes []NodeSize) (l Limits, ok bool) {
	l = s.EffectiveLimits(q)
	big, n := largest(nodes, q.NodeSelector)
	if n == 0 {
		return l, false
	}
	l.MaxCores = min(l.MaxCores, big.MaxCores)
	l.MaxMemoryMiB = min(l.MaxMemoryMiB, big.MaxMemoryMiB)
	if big.MaxDiskMiB > 0 {
		l.MaxDiskMiB = min(l.MaxDiskMiB, big.MaxDiskMiB)
	}
	l.MaxGPUs = min(l.MaxGPUs, big.MaxGPUs)
	return l, true
}

func selectorString(sel map[string]string) string {
	if len(sel) == 0 {
		return "{}"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		parts = append(parts, k+"="+sel[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func matching(sel map[string]string) string {
	if len(sel) == 0 {
		return ""
	}
	return "matching " + selectorString(sel) + " "
}

// NodeSizes are the schedulable nodes' allocatable resources (cordoned nodes left out).
func NodeSizes(nodes []corev1.Node) []NodeSize {
	var out []NodeSize
	for i := range nodes {
		n := &nodes[i]
		if n.Spec.Unschedulable {
			continue
		}
		a := n.Status.Allocatable
		gpu := a[corev1.ResourceName("nvidia.com/gpu")]
		out = append(out, NodeSize{Name: n.Name, Labels: n.Labels, Cores: a.Cpu().MilliValue() / 1000,
			MemoryMiB: a.Memory().Value() >> 20, DiskMiB: a.StorageEphemeral().Value() >> 20, GPUs: gpu.Value()})
	}
	return out
}
