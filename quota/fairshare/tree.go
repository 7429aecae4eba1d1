package fairshare

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// Node is one queue of a Tree.
type Node struct {
	// Name of the Queue.
	Name string
	// Parent is nil for the root.
	Parent *Node
	// Children sorted by name.
	Children []*Node

	// Weight (> 0), PriorityFactor (≥ 1), AcceptSurplus and Lendable (0–1) come from the Queue's spec.
	Weight         float64
	PriorityFactor float64
	AcceptSurplus  bool
	Lendable       float64
	// Guaranteed is the spec's guaranteed resources in core-equivalents.
	Guaranteed float64
	// Limit is the spec's limit per resource (nil: none).
	Limit corev1.ResourceList

	// Share is the queue's fraction of the capacity by weights alone: its weight over its siblings' times
	// its parent's share (the root's is 1).
	Share float64

	// Usage is the subtree's current usage in core-equivalents; Requests the same per resource.
	Usage    float64
	Requests map[corev1.ResourceName]float64
	// Decayed is the subtree's decayed usage in core-equivalents.
	Decayed float64
	// Users of a leaf, by name.
	Users map[string]*User

	// Target and Cap are set by Tree.Divide: the queue's entitlement and the most its subtree may use now.
	Target, Cap float64
}

// User is one user inside a leaf queue.
type User struct {
	// Name of the user.
	Name string
	// Usage (current) and Decayed usage in core-equivalents.
	Usage, Decayed float64
}

// IsLeaf reports whether the queue has no children (only leaves hold pods).
func (n *Node) IsLeaf() bool { return len(n.Children) == 0 }

// Path returns the queue and its ancestors up to, not including, the root: leaf first.
func (n *Node) Path() []*Node {
	var p []*Node
	for x := n; x != nil && x.Parent != nil; x = x.Parent {
		p = append(p, x)
	}
	return p
}

// Tree is the queue tree with usage.
type Tree struct {
	// Policy the tree charges with.
	Policy Policy
	// Root is the Queue named root.
	Root  *Node
	nodes map[string]*Node
}

// Build makes the tree of queues. Queues whose parent does not exist or that sit on a cycle are left out and
// reported in skipped (name → reason); without a root Queue, Build fails.
func Build(queues []kubehtcv1alpha1.Queue) (t *Tree, skipped map[string]error, err error) {
	byName := make(map[string]*kubehtcv1alpha1.Queue, len(queues))
	for i := range queues {
		byName[queues[i].Name] = &queues[i]
	}
	root := byName[kubehtcv1alpha1.RootQueueName]
	if root == nil {
		return nil, nil, fmt.Errorf("no Queue named %q: fair share needs the root of the queue tree", kubehtcv1alpha1.RootQueueName)
	}
	pol, err := PolicyFor(root)
	if err != nil {
		return nil, nil, fmt.Errorf("queue %s: policy: %w", root.Name, err)
	}
	t = &Tree{Policy: pol, nodes: map[string]*Node{}}
	skipped = map[string]error{}
	// A queue joins if following parents reaches the root without revisiting a queue.
	for name, q := range byName {
		seen := map[string]bool{}
		for x := q; ; {
			if x.Name == kubehtcv1alpha1.RootQueueName {
				break
			}
			if seen[x.Name] {
				skipped[name] = fmt.Errorf("queue %s: parent chain has a cycle through %s", name, x.Name)
				break
			}
			seen[x.Name] = true
			p := byName[x.Spec.Parent]
			if p == nil {
				skipped[name] = fmt.Errorf("queue %s: parent %q does not exist", name, x.Spec.Parent)
				break
			}
			x = p
		}
	}
	for name, q := range byName {
		if skipped[name] == nil {
			t.nodes[name] = t.newNode(q)
		}
	}
	for name, n := range t.nodes {
		if name == kubehtcv1alpha1.RootQueueName {
			t.Root = n
			continue
		}
		p := t.nodes[byName[name].Spec.Parent]
		n.Parent = p
		p.Children = append(p.Children, n)
	}
	for _, n := range t.nodes {
		slices.SortFunc(n.Children, func(a, b *Node) int { return strings.Compare(a.Name, b.Name) })
	}
	t.Root.Share = 1
	t.walk(t.Root, func(n *Node) {
		var sum float64
		for _, c := range n.Children {
			sum += c.Weight
		}
		for _, c := range n.Children {
			c.Share = n.Share * c.Weight / sum
		}
	})
	return t, skipped, nil
}

func (t *Tree) newNode(q *kubehtcv1alpha1.Queue) *Node {
	n := &Node{
		Name:           q.Name,
		Weight:         1,
		PriorityFactor: 1,
		AcceptSurplus:  true,
		Lendable:       1,
		Guaranteed:     t.Policy.Charge(q.Spec.Guaranteed),
		Limit:          q.Spec.Limit,
		Requests:       map[corev1.ResourceName]float64{},
		Users:          map[string]*User{},
	}
	if q.Spec.Weight > 0 {
		n.Weight = float64(q.Spec.Weight)
	}
	if q.Spec.PriorityFactor > 0 {
		n.PriorityFactor = float64(q.Spec.PriorityFactor)
	}
	if q.Spec.AcceptSurplus != nil {
		n.AcceptSurplus = *q.Spec.AcceptSurplus
	}
	if q.Spec.LendablePercent != nil {
		n.Lendable = min(max(float64(*q.Spec.LendablePercent)/100, 0), 1)
	}
	return n
}

// walk calls f on n and its descendants, parents before children, children in name order.
func (t *Tree) walk(n *Node, f func(*Node)) {
	f(n)
	for _, c := range n.Children {
		t.walk(c, f)
	}
}

// Node returns the queue named name, or nil.
func (t *Tree) Node(name string) *Node { return t.nodes[name] }

// Nodes returns every queue of the tree, parents before children.
func (t *Tree) Nodes() []*Node {
	out := make([]*Node, 0, len(t.nodes))
	t.walk(t.Root, func(n *Node) { out = append(out, n) })
	return out
}

// AddUsage adds current usage (requests of running pods, and their charge) and decayed usage of one user of
// leaf to the leaf and all its ancestors. Negative amounts remove usage (a preemption victim). It returns
// false if leaf is not a leaf of the tree.
func (t *Tree) AddUsage(leaf, user string, requests corev1.ResourceList, charge, decayed float64) bool {
	req := make(map[corev1.ResourceName]float64, len(requests))
	for r, q := range requests {
		req[r] = q.AsApproximateFloat64()
	}
	return t.AddUsageValues(leaf, user, req, charge, decayed)
}

// AddUsageValues is AddUsage with requests as numbers (cores, bytes, devices).
func (t *Tree) AddUsageValues(leaf, user string, requests map[corev1.ResourceName]float64, charge, decayed float64) bool {
	n := t.nodes[leaf]
	if n == nil || !n.IsLeaf() || n.Parent == nil {
		return false
	}
	u := n.Users[user]
	if u == nil {
		u = &User{Name: user}
		n.Users[user] = u
	}
	u.Usage += charge
	u.Decayed += decayed
	for x := n; x != nil; x = x.Parent {
		x.Usage += charge
		x.Decayed += decayed
		for r, v := range requests {
			x.Requests[r] += v
		}
	}
	return true
}

// SubtractRequests removes one pod's requests and charge from leaf and its ancestors (a simulated
// preemption victim). Decayed usage does not change: preemption ends current usage, not history.
func (t *Tree) SubtractRequests(leaf, user string, requests corev1.ResourceList, charge float64) {
	neg := make(corev1.ResourceList, len(requests))
	for r, q := range requests {
		q = q.DeepCopy()
		q.Neg()
		neg[r] = q
	}
	t.AddUsage(leaf, user, neg, -charge, 0)
}

// Divide sets every queue's Target and Cap for the capacity queues divide (in core-equivalents; the
// cluster's allocatable minus what pods outside any queue request).
//
// Targets, per level: t_i = max(parentTarget·w_i/Σw, g_i); if Σt exceeds the parent's target, the part of
// each t_i above its guarantee g_i shrinks in proportion until Σt equals it (and if the guarantees alone
// exceed it, they are scaled down together). Children's targets thus sum to their parent's.
//
// Caps, per level: a queue that does not accept surplus may use min(target, parentCap − siblings' use and
// hold-back); one that does, parentCap − Σ over siblings s of (usage_s + hold_s), hold_s =
// max(0, (1−lendable_s)·target_s − usage_s). Caps are never negative.
func (t *Tree) Divide(capacity float64) {
	capacity = max(capacity, 0)
	t.Root.Target, t.Root.Cap = capacity, capacity
	t.walk(t.Root, func(p *Node) {
		if p.IsLeaf() {
			return
		}
		divideTargets(p)
		var used float64
		for _, c := range p.Children {
			used += c.Usage + c.hold()
		}
		for _, c := range p.Children {
			c.Cap = max(0, p.Cap-(used-c.Usage-c.hold()))
			if !c.AcceptSurplus {
				c.Cap = min(c.Cap, c.Target)
			}
		}
	})
}

// hold is what an idle queue keeps free for itself: the part of its target it does not lend, less what it
// already uses.
func (n *Node) hold() float64 { return max(0, (1-n.Lendable)*n.Target-n.Usage) }

func divideTargets(p *Node) {
	var wsum, gsum float64
	for _, c := range p.Children {
		wsum += c.Weight
		gsum += c.Guaranteed
	}
	if gsum >= p.Target {
		// Guarantees alone fill (or overbook) the parent: scale them down together.
		for _, c := range p.Children {
			c.Target = 0
			if gsum > 0 {
				c.Target = p.Target * c.Guaranteed / gsum
			}
		}
		return
	}
	var sum, above float64
	for _, c := range p.Children {
		c.Target = max(p.Target*c.Weight/wsum, c.Guaranteed)
		sum += c.Target
		above += c.Target - c.Guaranteed
	}
	if excess := sum - p.Target; excess > 0 && above > 0 {
		f := excess / above
		for _, c := range p.Children {
			c.Target -= (c.Target - c.Guaranteed) * f
		}
	}
}

// ExceedsLimit returns the first queue on leaf's path whose limit adding requests would exceed, with the
// resource, or nil.
func (t *Tree) ExceedsLimit(leaf string, requests corev1.ResourceList) (*Node, corev1.ResourceName) {
	n := t.nodes[leaf]
	for _, x := range n.Path() {
		for r, lim := range x.Limit {
			req, ok := requests[r]
			if !ok {
				continue
			}
			if x.Requests[r]+req.AsApproximateFloat64() > lim.AsApproximateFloat64()*(1+1e-9) {
				return x, r
			}
		}
	}
	return nil, ""
}

// ExceedsCap returns the first queue on leaf's path whose Cap adding charge would exceed, or nil.
func (t *Tree) ExceedsCap(leaf string, charge float64) *Node {
	for _, x := range t.nodes[leaf].Path() {
		if x.Usage+charge > x.Cap+1e-9 {
			return x
		}
	}
	return nil
}

// belowLCA returns the queues of a's path that are not on b's path (below their lowest common ancestor).
func belowLCA(a, b *Node) []*Node {
	onB := map[*Node]bool{}
	for _, x := range b.Path() {
		onB[x] = true
	}
	var out []*Node
	for _, x := range a.Path() {
		if onB[x] {
			break
		}
		out = append(out, x)
	}
	return out
}

// CanReclaim reports whether a pod charged c of leaf q may take the place of pods charged v of leaf w:
// after the move, every queue on q's side below their common ancestor stays at or below its target
// (usage + c ≤ target) and every queue on w's side stays at or above its target (usage − v ≥ target).
//
// Why reclaim cannot cycle: for w's pods to be taken back later, some queue on w's side would have to be
// below its target and one on q's side above its target; neither happens, because the move left w's side at
// or above and q's side at or below. So each reclaim lowers Σ max(0, usage − target) over all queues (the
// borrowed capacity) by v, and no sequence of reclaims can return to an earlier state; only new capacity
// or targets (weights, the pods outside queues) can change who is over.
func (t *Tree) CanReclaim(q, w string, c, v float64) bool {
	qn, wn := t.nodes[q], t.nodes[w]
	if qn == nil || wn == nil || qn == wn {
		return false
	}
	for _, x := range belowLCA(qn, wn) {
		if x.Usage+c > x.Target+1e-9 {
			return false
		}
	}
	for _, x := range belowLCA(wn, qn) {
		if x.Usage-v < x.Target-1e-9 {
			return false
		}
	}
	return true
}

// Overage is how far leaf's usage is above its target, relative to the target: reclaim takes from the most
// over first.
func (t *Tree) Overage(leaf string) float64 {
	n := t.nodes[leaf]
	if n == nil {
		return 0
	}
	return (n.Usage - n.Target) / max(n.Target, 1e-9)
}
