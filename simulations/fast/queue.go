package fast

import (
	"container/heap"
	"fmt"
	"sort"

	"github.com/kubehtc/kubehtc/scheduler/simframework"
	"github.com/kubehtc/kubehtc/simulations/workload"
)

// The scheduling queue is kept as groups of pods of one shape: same namespace, labels that plugins read
// (class, owner, gang), requests and GPU models. Pods of one shape are interchangeable to every filter and to
// the queue-sort plugin up to their queue timestamps, so within a group they are in queue order when kept in
// submission order, and the queue's order is the merge of the groups' heads. A pass pops the best head (a
// heap of groups, rebuilt when a binding or a preemption may have changed fair-share ranks) and tries it.
// When a pod of a non-gang group fails, the rest of its group would fail too as long as nothing is freed, so
// the group leaves the pass (it is parked); a preemption in the same pass (which frees a node) brings parked
// groups back from their first pod after the preemptor. The cost of a pass is then the pods it binds plus one
// attempt per group, not the length of the queue.

// group is the pending pods of one shape.
type group struct {
	key string
	// pods are in queue order; pods[head:] holds the live ones and tombstones (gone).
	pods []*pending
	head int
	// untried: pods[untried:] have not been tried since they entered the queue; those before failed at the
	// last attempt of the group, byFairShare saying whether FairShare rejected it (an accounting interval
	// then requeues them).
	untried     int
	byFairShare bool
	// gang groups are tried pod by pod: a member waiting at Permit holds a node, so its fellows' outcome
	// differs.
	gang bool
	// cur is the pod the current pass tries next; idx is the group's index in the pass heap (-1 outside).
	cur, idx int
	parked   bool
	live     int
}

// shapeKey is what makes two pods interchangeable to the scheduler.
func shapeKey(p *workload.Pod) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%d|%d|%d|%v", p.Queue, p.Label, p.Owner, p.Gang, p.Class, p.MilliCPU, p.MemoryBytes, p.GPUs, p.GPUModels)
}

// add puts e into g at its place: after every pod the queue-sort plugin does not rank after it.
func (g *group) add(s *simframework.Scheduler, e *pending) {
	n := len(g.pods)
	i := n
	if n > g.head && s.LessQueued(e.info, g.pods[n-1].info) {
		i = g.head + sort.Search(n-g.head, func(k int) bool { return s.LessQueued(e.info, g.pods[g.head+k].info) })
	}
	g.pods = append(g.pods, nil)
	copy(g.pods[i+1:], g.pods[i:])
	g.pods[i] = e
	if i < g.untried {
		g.untried = i
	}
	if g.cur > i {
		g.cur++
	}
	g.live++
}

// remove marks the pod at i gone and drops leading tombstones; indexes stay valid.
func (g *group) remove(i int) {
	g.pods[i].gone = true
	g.live--
	for g.head < len(g.pods) && g.pods[g.head].gone {
		g.pods[g.head] = nil
		g.head++
	}
}

// tidy compacts g when most of its slice is dead (between passes only: compact moves indexes).
func (g *group) tidy() {
	if n := len(g.pods); n > 64 && g.live < n/2 {
		g.compact()
	}
}

// compact drops tombstones (only between passes: it moves cur).
func (g *group) compact() {
	kept := g.pods[:0]
	untried, cur := len(g.pods), -1
	for i, e := range g.pods {
		if e == nil || e.gone {
			continue
		}
		if i >= g.untried && untried == len(g.pods) {
			untried = len(kept)
		}
		if i >= g.cur && cur < 0 {
			cur = len(kept)
		}
		kept = append(kept, e)
	}
	if untried == len(g.pods) {
		untried = len(kept)
	}
	if cur < 0 {
		cur = len(kept)
	}
	clear(g.pods[len(kept):])
	g.pods, g.head, g.untried, g.cur = kept, 0, untried, cur
}

// nextLive is the first live pod at or after i, or len(pods).
func (g *group) nextLive(i int) int {
	i = max(i, g.head)
	for i < len(g.pods) && g.pods[i].gone {
		i++
	}
	return i
}

// passHeap orders groups by their current pod in the profile's queue order, submission order breaking ties.
type passHeap struct {
	s      *simframework.Scheduler
	groups []*group
}

func (h *passHeap) Len() int { return len(h.groups) }
func (h *passHeap) Less(i, j int) bool {
	a, b := h.groups[i].pods[h.groups[i].cur], h.groups[j].pods[h.groups[j].cur]
	if h.s.LessQueued(a.info, b.info) {
		return true
	}
	if h.s.LessQueued(b.info, a.info) {
		return false
	}
	return a.seq < b.seq
}
func (h *passHeap) Swap(i, j int) {
	h.groups[i], h.groups[j] = h.groups[j], h.groups[i]
	h.groups[i].idx, h.groups[j].idx = i, j
}
func (h *passHeap) Push(x any) {
	g := x.(*group)
	g.idx = len(h.groups)
	h.groups = append(h.groups, g)
}
func (h *passHeap) Pop() any {
	old := h.groups
	g := old[len(old)-1]
	old[len(old)-1] = nil
	h.groups = old[:len(old)-1]
	g.idx = -1
	return g
}

var _ heap.Interface = &passHeap{}
