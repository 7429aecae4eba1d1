package reservation

import (
	"slices"
	"time"
)

// Reservation is a held future placement of one job.
type Reservation struct {
	// Key names the job: "namespace/podgroup" for a gang, "namespace/pod" for a single pod.
	Key string
	// Job is what is reserved for.
	Job Job
	// Plan is the start and the nodes.
	Plan Plan
	// Since is when the job first got a reservation.
	Since time.Time
}

// HeldOn is the capacity the reservation holds on node (nil if the node is not in the plan).
func (r *Reservation) HeldOn(node string) Resources {
	for _, a := range r.Plan.Nodes {
		if a.Node == node {
			return r.Job.Member.Scaled(a.Members)
		}
	}
	return nil
}

// Set is a bounded set of reservations, ordered by the rank of their jobs (best first). It is not safe for
// concurrent use; the plugin guards it.
type Set struct {
	max   int
	items []*Reservation
}

// NewSet returns an empty set that holds at most max reservations.
func NewSet(max int) *Set { return &Set{max: max} }

// Len is the number of reservations.
func (s *Set) Len() int { return len(s.items) }

// All returns the reservations, best-ranked first. The slice is the set's own: do not modify it.
func (s *Set) All() []*Reservation { return s.items }

// Get returns the reservation of key, or nil.
func (s *Set) Get(key string) *Reservation {
	if i := s.index(key); i >= 0 {
		return s.items[i]
	}
	return nil
}

func (s *Set) index(key string) int {
	return slices.IndexFunc(s.items, func(r *Reservation) bool { return r.Key == key })
}

// Admit reports whether a job of key would get (or keep) a place in the set: it has one, the set has room, or
// it ranks before the worst-ranked reservation (before(key, other) says whether key's job ranks first).
func (s *Set) Admit(key string, before func(other string) bool) bool {
	if s.index(key) >= 0 || len(s.items) < s.max {
		return true
	}
	return len(s.items) > 0 && before(s.items[len(s.items)-1].Key)
}

// Put adds or replaces r, keeping the set ordered by before(a, b) (a's job ranks first) and bounded: when the
// set is full, the worst-ranked reservation is dropped and returned (it may be r itself, which is then not
// kept).
func (s *Set) Put(r *Reservation, before func(a, b string) bool) (dropped *Reservation) {
	if i := s.index(r.Key); i >= 0 {
		r.Since = s.items[i].Since
		s.items = slices.Delete(s.items, i, i+1)
	}
	i := slices.IndexFunc(s.items, func(o *Reservation) bool { return before(r.Key, o.Key) })
	if i < 0 {
		i = len(s.items)
	}
	s.items = slices.Insert(s.items, i, r)
	if len(s.items) > s.max {
		dropped = s.items[len(s.items)-1]
		s.items = s.items[:len(s.items)-1]
	}
	return dropped
}

// Delete removes the reservation of key and returns it (nil if there was none).
func (s *Set) Delete(key string) *Reservation {
	i := s.index(key)
	if i < 0 {
		return nil
	}
	r := s.items[i]
	s.items = slices.Delete(s.items, i, i+1)
	return r
}

// Held sums what the reservations other than except's hold on node.
func (s *Set) Held(node, except string) Resources {
	var out Resources
	for _, r := range s.items {
		if r.Key == except {
			continue
		}
		if h := r.HeldOn(node); h != nil {
			if out == nil {
				out = Resources{}
			}
			out.Add(h)
		}
	}
	return out
}
