package fairshare

import (
	"cmp"
	"slices"
	"strings"
)

// Entry is one (leaf queue, user) pair of the ranking.
type Entry struct {
	Queue, User string
}

// Ranking is the Fair Tree order of a tree.
type Ranking struct {
	// Order lists every (leaf, user) pair of the tree once, first served first.
	Order []Entry
	// QueueRank is each queue's position (1 = first) in the depth-first visit, root excluded.
	QueueRank map[string]int

	rank     map[Entry]int
	leafBase map[string]int
}

// Rank returns the position of a pod of user in leaf: 1 + the number of slots before it. A user the tree
// does not know (no usage yet) ranks first within its leaf, tied with nothing of another leaf. A leaf that is
// not in the tree ranks after everything.
func (r *Ranking) Rank(leaf, user string) int {
	if v, ok := r.rank[Entry{leaf, user}]; ok {
		return v
	}
	if b, ok := r.leafBase[leaf]; ok {
		return b
	}
	return len(r.Order) + len(r.leafBase) + 1
}

// LevelFairShare compares two siblings a and b by level fair-share LF = S/U, with S = weight/Σweights and
// U = factor·decayed/Σ(factor·decayed) over the siblings. The sums are common to both, so
// LF_a > LF_b ⇔ w_a·(f_b·D_b) > w_b·(f_a·D_a), which needs no division and makes LF = ∞ (no usage) compare
// above any finite LF; two queues without usage tie. It returns -1 if a goes first, +1 if b does, 0 on a tie
// (then the larger weight goes first, then the name).
func LevelFairShare(a, b *Node) int {
	la := a.Weight * (b.PriorityFactor * b.Decayed)
	lb := b.Weight * (a.PriorityFactor * a.Decayed)
	if c := cmp.Compare(lb, la); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Weight, a.Weight); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// Rank computes the Fair Tree order: depth first from the root, siblings by LevelFairShare, the users of a
// leaf by ascending decayed usage (equal shares: LF = (1/n)/(D_u/ΣD) orders like 1/D_u), ties by name.
func (t *Tree) Rank() *Ranking {
	r := &Ranking{QueueRank: map[string]int{}, rank: map[Entry]int{}, leafBase: map[string]int{}}
	slot := 1
	var visit func(n *Node)
	visit = func(n *Node) {
		if n.Parent != nil {
			r.QueueRank[n.Name] = len(r.QueueRank) + 1
		}
		if n.IsLeaf() && n.Parent != nil {
			// One slot for users not seen yet, then the known users.
			r.leafBase[n.Name] = slot
			slot++
			users := make([]*User, 0, len(n.Users))
			for _, u := range n.Users {
				users = append(users, u)
			}
			slices.SortFunc(users, func(a, b *User) int {
				if c := cmp.Compare(a.Decayed, b.Decayed); c != 0 {
					return c
				}
				return strings.Compare(a.Name, b.Name)
			})
			for _, u := range users {
				e := Entry{n.Name, u.Name}
				r.Order = append(r.Order, e)
				r.rank[e] = slot
				slot++
			}
			return
		}
		kids := slices.Clone(n.Children)
		slices.SortFunc(kids, LevelFairShare)
		for _, c := range kids {
			visit(c)
		}
	}
	visit(t.Root)
	return r
}
