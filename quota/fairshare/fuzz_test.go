package fairshare

import (
	"fmt"
	"math"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// treeFromBytes builds a queue tree and usage from fuzz input: each 6-byte record adds a queue (parent among
// the earlier ones, weight, guarantee, surplus, lendable) and usage for two users of it.
func treeFromBytes(data []byte) (*Tree, float64) {
	queues := []kubehtcv1alpha1.Queue{rootQueue(nil)}
	names := []string{"root"}
	type use struct {
		leaf, user string
		cur, dec   float64
	}
	var uses []use
	for i := 0; i+6 <= len(data) && len(names) < 40; i += 6 {
		b := data[i : i+6]
		name := fmt.Sprintf("q%d", len(names))
		x := q(name, names[int(b[0])%len(names)], int32(b[1]%50)+1)
		if b[2]%4 == 0 {
			x.Spec.Guaranteed = corev1.ResourceList{"cpu": *resource.NewQuantity(int64(b[2]%64), resource.DecimalSI)}
		}
		x.Spec.AcceptSurplus = ptr.To(b[3]%3 != 0)
		x.Spec.LendablePercent = ptr.To(int32(b[3]) % 101)
		x.Spec.PriorityFactor = int32(b[4]%4) + 1
		queues = append(queues, x)
		names = append(names, name)
		uses = append(uses, use{name, "u" + fmt.Sprint(b[5]%3), float64(b[5] % 20), float64(b[4] % 30)})
	}
	t, _, err := Build(queues)
	if err != nil {
		panic(err)
	}
	for _, u := range uses {
		t.AddUsage(u.leaf, u.user, nil, u.cur, u.dec) // false for non-leaves: they hold no pods
	}
	capacity := 0.0
	if len(data) > 0 {
		capacity = float64(data[len(data)-1]) * 2
	}
	t.Divide(capacity)
	return t, capacity
}

// FuzzTree checks the tree invariants: children's shares and targets sum to their parent's, no negative
// target or cap, guarantees respected when they fit, and the ranking is a permutation of all (leaf, user)
// pairs in Fair Tree order (a queue ahead of its sibling puts all its users ahead).
func FuzzTree(f *testing.F) {
	f.Add([]byte{0, 49, 1, 1, 1, 5, 0, 29, 1, 1, 1, 3, 0, 19, 1, 1, 1, 0, 100})
	f.Add([]byte{0, 1, 4, 0, 3, 7, 1, 2, 8, 2, 0, 9, 1, 3, 0, 5, 2, 2, 0, 0, 0, 0, 0, 0, 10})
	f.Add([]byte{0, 9, 60, 3, 0, 1, 0, 9, 60, 3, 0, 1, 2, 1, 0, 0, 0, 0, 3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, capacity := treeFromBytes(data)
		const eps = 1e-6
		for _, n := range tr.Nodes() {
			if n.Target < -eps || n.Cap < -eps || math.IsNaN(n.Target) || math.IsNaN(n.Cap) {
				t.Fatalf("%s: target %g, cap %g", n.Name, n.Target, n.Cap)
			}
			if n.IsLeaf() {
				continue
			}
			var share, target, guaranteed float64
			for _, c := range n.Children {
				share += c.Share
				target += c.Target
				guaranteed += c.Guaranteed
			}
			if math.Abs(share-n.Share) > eps {
				t.Errorf("%s: children's shares sum to %g, want %g", n.Name, share, n.Share)
			}
			if math.Abs(target-n.Target) > eps*max(1, n.Target) {
				t.Errorf("%s: children's targets sum to %g, want %g", n.Name, target, n.Target)
			}
			if guaranteed <= n.Target {
				for _, c := range n.Children {
					if c.Target < c.Guaranteed-eps {
						t.Errorf("%s: target %g below guarantee %g that fits", c.Name, c.Target, c.Guaranteed)
					}
				}
			}
		}
		if tr.Root.Target != capacity {
			t.Errorf("root target %g, want capacity %g", tr.Root.Target, capacity)
		}
		r := tr.Rank()
		seen := map[Entry]bool{}
		prev := 0
		want := 0
		for _, n := range tr.Nodes() {
			if n.IsLeaf() && n.Parent != nil {
				want += len(n.Users)
			}
		}
		if len(r.Order) != want {
			t.Fatalf("order has %d entries, want %d", len(r.Order), want)
		}
		pos := map[string]int{} // first position of each queue's users
		for i, e := range r.Order {
			if seen[e] {
				t.Fatalf("%v twice in the order", e)
			}
			seen[e] = true
			rk := r.Rank(e.Queue, e.User)
			if rk <= prev {
				t.Fatalf("rank of %v is %d, not after %d", e, rk, prev)
			}
			prev = rk
			for x := tr.Node(e.Queue); x != nil; x = x.Parent {
				if _, ok := pos[x.Name]; !ok {
					pos[x.Name] = i
				}
			}
		}
		// Fair Tree: of two siblings, the one LevelFairShare puts first has all its users before the other's.
		last := map[string]int{}
		for i, e := range r.Order {
			for x := tr.Node(e.Queue); x != nil; x = x.Parent {
				last[x.Name] = i
			}
		}
		for _, n := range tr.Nodes() {
			for _, a := range n.Children {
				for _, b := range n.Children {
					_, okA := pos[a.Name]
					_, okB := pos[b.Name]
					if a == b || !okA || !okB {
						continue
					}
					if LevelFairShare(a, b) < 0 && last[a.Name] > pos[b.Name] {
						t.Errorf("%s goes before %s but its users are interleaved with %s's", a.Name, b.Name, b.Name)
					}
				}
			}
		}
	})
}
