// Package reservation computes and keeps the scheduler's reservations: future placements of the top-ranked
// big jobs (a gang, or a pod larger than the free room any node has) that cannot start now. It is pure — no
// client, no framework — so that the earliest-start arithmetic is tested on its own; the Reservation plugin
// (scheduler/reservation) feeds it nodes and running pods from the scheduler's snapshot and a clock.
//
// The model is Slurm's backfill: a running pod is expected to end at its start plus its walltime; the
// earliest start of a job is the first of those ends after which its members fit, on the nodes that are then
// free enough. The job holds those nodes from that start; other pods may use them before only if they end by
// then (backfill) or leave room for the held capacity. A running pod without a walltime never ends, as far as
// the model knows, so the capacity it holds is never promised to a job.
package reservation

import (
	"slices"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// Resources are amounts by resource name in the scheduler's units: milli-CPU for cpu, bytes for memory,
// counts for extended resources.
type Resources map[v1.ResourceName]int64

// Add adds o to r (r must not be nil).
func (r Resources) Add(o Resources) {
	for k, v := range o {
		r[k] += v
	}
}

// Scaled returns r times n.
func (r Resources) Scaled(n int) Resources {
	out := make(Resources, len(r))
	for k, v := range r {
		out[k] = v * int64(n)
	}
	return out
}

// Running is a pod on a node as the model sees it.
type Running struct {
	// Request is what the pod holds.
	Request Resources
	// End is when it is expected to end (start + walltime); zero when it has no walltime (never, for the model).
	End time.Time
}

// Node is a node's state now.
type Node struct {
	// Name of the node.
	Name string
	// Allocatable is the node's capacity for pods.
	Allocatable Resources
	// Running are the pods on the node (bound or assumed).
	Running []Running
	// Held is capacity promised to other reservations on this node; it is never counted as free.
	Held Resources
}

// Job is what a reservation is for: Count identical members of size Member (a gang: minMember pods still to
// place; a big pod: one). Members of different sizes are modelled by the largest of each resource.
type Job struct {
	Member Resources
	Count  int
}

// Assignment is a node of a plan: how many members start there.
type Assignment struct {
	Node    string
	Members int
}

// Plan is the earliest placement of a job.
type Plan struct {
	// Start is when the members fit (now if they fit now).
	Start time.Time
	// Nodes are the nodes the members will use, by name.
	Nodes []Assignment
}

// Earliest returns the earliest time at or after now at which job's members all fit on nodes, and the nodes
// they use, by replaying the expected ends of the running pods; false if they never fit (the capacity they
// need is held by pods without walltime, or does not exist).
//
// A node's room for members is min over the member's resources of floor(free / member), where free is the
// allocatable minus the pods still running minus Held. Ends are processed in time order and each updates
// only its node's room, so the cost is O(P log P + N) for P running pods on N nodes. A pod that has overrun
// its walltime (End before now) is expected to end now. The plan uses the nodes with the most room first (the
// fewest nodes are held), ties by name.
func Earliest(now time.Time, nodes []Node, job Job) (Plan, bool) {
	if job.Count <= 0 {
		return Plan{Start: now}, true
	}
	type end struct {
		at   time.Time
		node int
		req  Resources
	}
	free := make([]Resources, len(nodes))
	room := make([]int, len(nodes))
	var ends []end
	total := 0
	for i, n := range nodes {
		f := make(Resources, len(job.Member))
		for r := range job.Member {
			f[r] = n.Allocatable[r] - n.Held[r]
		}
		for _, p := range n.Running {
			for r := range job.Member {
				f[r] -= p.Request[r]
			}
			if !p.End.IsZero() {
				ends = append(ends, end{at: maxTime(p.End, now), node: i, req: p.Request})
			}
		}
		free[i] = f
		room[i] = roomFor(f, job.Member)
		total += room[i]
	}
	sort.SliceStable(ends, func(a, b int) bool { return ends[a].at.Before(ends[b].at) })
	at := now
	for i := 0; total < job.Count; {
		if i == len(ends) {
			return Plan{}, false
		}
		at = ends[i].at
		// Every pod that ends at the same instant frees its share before the fit is checked again.
		for ; i < len(ends) && ends[i].at.Equal(at); i++ {
			e := ends[i]
			for r := range job.Member {
				free[e.node][r] += e.req[r]
			}
			total -= room[e.node]
			room[e.node] = roomFor(free[e.node], job.Member)
			total += room[e.node]
		}
	}
	order := make([]int, 0, len(nodes))
	for i := range nodes {
		if room[i] > 0 {
			order = append(order, i)
		}
	}
	sort.Slice(order, func(a, b int) bool {
		if room[order[a]] != room[order[b]] {
			return room[order[a]] > room[order[b]]
		}
		return nodes[order[a]].Name < nodes[order[b]].Name
	})
	plan := Plan{Start: at}
	left := job.Count
	for _, i := range order {
		if left == 0 {
			break
		}
		m := min(room[i], left)
		plan.Nodes = append(plan.Nodes, Assignment{Node: nodes[i].Name, Members: m})
		left -= m
	}
	slices.SortFunc(plan.Nodes, func(a, b Assignment) int { return strings.Compare(a.Node, b.Node) })
	return plan, true
}

// roomFor is how many members fit in free: min over the member's resources of floor(free/member).
func roomFor(free, member Resources) int {
	n := -1
	for r, want := range member {
		if want <= 0 {
			continue
		}
		if free[r] < want {
			return 0
		}
		if k := int(free[r] / want); n < 0 || k < n {
			n = k
		}
	}
	if n < 0 {
		// A member that requests nothing fits anywhere, once per node for the model's purpose.
		return 1
	}
	return n
}

// FitsAt reports whether a pod of request req, placed on the node now and still running at, leaves the node
// room for held at that time: allocatable − (pods still running at `at`, those without End included) − held
// ≥ req, for every resource of req and held.
func FitsAt(n Node, held, req Resources, at time.Time) bool {
	check := func(r v1.ResourceName) bool {
		free := n.Allocatable[r] - held[r] - n.Held[r]
		for _, p := range n.Running {
			if p.End.IsZero() || p.End.After(at) {
				free -= p.Request[r]
			}
		}
		return free >= req[r]
	}
	for r := range req {
		if !check(r) {
			return false
		}
	}
	for r := range held {
		if _, done := req[r]; !done && !check(r) {
			return false
		}
	}
	return true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
