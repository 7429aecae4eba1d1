package reservation

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
)

const gpu v1.ResourceName = "nvidia.com/gpu"

var t0 = time.Date(2026, 1, 1, 14, 0, 0, 0, time.UTC)

func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

func gpus(n int64) Resources { return Resources{gpu: n} }

// node8 is an 8-GPU node running one 1-GPU pod per entry of ends (minutes after t0; -1: no walltime).
func node8(name string, ends ...int) Node {
	n := Node{Name: name, Allocatable: Resources{gpu: 8, v1.ResourceCPU: 64000}}
	for _, e := range ends {
		r := Running{Request: Resources{gpu: 1, v1.ResourceCPU: 1000}}
		if e != -1 {
			r.End = at(e)
		}
		n.Running = append(n.Running, r)
	}
	return n
}

func TestEarliest(t *testing.T) {
	tests := []struct {
		name   string
		nodes  []Node
		job    Job
		want   Plan
		wantOK bool
	}{{
		// Both nodes idle: 8/8 = 1 member each, 2 ≥ 2 at once.
		name:   "fits now",
		nodes:  []Node{node8("a"), node8("b")},
		job:    Job{Member: gpus(8), Count: 2},
		want:   Plan{Start: t0, Nodes: []Assignment{{"a", 1}, {"b", 1}}},
		wantOK: true,
	}, {
		// a: 8 pods ending at 10..45 → free 8 at 45; b: 3 pods ending at 5, 20, 60 → free 8 at 60.
		// The second 8-GPU member fits only when b's last pod ends: start 60.
		name:   "two full nodes, start at the later of their last ends",
		nodes:  []Node{node8("a", 10, 15, 20, 25, 30, 35, 40, 45), node8("b", 5, 20, 60)},
		job:    Job{Member: gpus(8), Count: 2},
		want:   Plan{Start: at(60), Nodes: []Assignment{{"a", 1}, {"b", 1}}},
		wantOK: true,
	}, {
		// Members of 4 GPUs: a (5 pods, ends 10..50) has 3 free now, 4 at 10 → 1 member; 8 at 50 → 2.
		// b (1 pod without walltime) has 7 free → 1 member now. 3 members: a 1 + b 1 at 10 is 2; a reaches 2
		// at 50 → start 50, a holds 2 members, b 1.
		name:   "pods without walltime keep their GPU forever",
		nodes:  []Node{node8("a", 10, 20, 30, 40, 50), node8("b", -1)},
		job:    Job{Member: gpus(4), Count: 3},
		want:   Plan{Start: at(50), Nodes: []Assignment{{"a", 2}, {"b", 1}}},
		wantOK: true,
	}, {
		// b's pod without walltime means b never has 8 free: one 8-GPU member at most (a's, at 30).
		name:   "never fits",
		nodes:  []Node{node8("a", 30), node8("b", -1)},
		job:    Job{Member: gpus(8), Count: 2},
		wantOK: false,
	}, {
		// A pod overrunning its walltime (end 10 min ago) is expected to end now: the job starts now.
		name:   "overrun pod expected to end now",
		nodes:  []Node{node8("a", -10)},
		job:    Job{Member: gpus(8), Count: 1},
		want:   Plan{Start: t0, Nodes: []Assignment{{"a", 1}}},
		wantOK: true,
	}, {
		// Another reservation holds 4 GPUs on a: a's room is (8 − 4)/8 = 0 forever; c free at 20 → start 20 on
		// b (end 5) and c.
		name: "held capacity is never free",
		nodes: []Node{func() Node { n := node8("a", 1); n.Held = gpus(4); return n }(),
			node8("b", 5), node8("c", 20)},
		job:    Job{Member: gpus(8), Count: 2},
		want:   Plan{Start: at(20), Nodes: []Assignment{{"b", 1}, {"c", 1}}},
		wantOK: true,
	}, {
		// CPU decides: 64 cores, 60 held by pods ending at 30 → 4 free now; an 8-core member fits at 30
		// (64/8 = 8 members); the GPU-free member needs no GPU.
		name: "multicore job among single-core pods",
		nodes: []Node{{Name: "cpu", Allocatable: Resources{v1.ResourceCPU: 64000},
			Running: []Running{{Request: Resources{v1.ResourceCPU: 60000}, End: at(30)}}}},
		job:    Job{Member: Resources{v1.ResourceCPU: 8000}, Count: 1},
		want:   Plan{Start: at(30), Nodes: []Assignment{{"cpu", 1}}},
		wantOK: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Earliest(t0, tc.nodes, tc.job)
			if ok != tc.wantOK {
				t.Fatalf("Earliest ok = %v, want %v (plan %+v)", ok, tc.wantOK, got)
			}
			if !ok {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Earliest (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestFitsAt(t *testing.T) {
	// A 1-GPU pod on node a (8 GPUs, pods ending at 10, 20 and one without walltime), 6 GPUs reserved from 30.
	n := node8("a", 10, 20, -1)
	tests := []struct {
		name string
		n    Node
		req  Resources
		want bool
	}{
		// At 30 only the pod without walltime runs: 8 − 1 − 6 = 1 ≥ 1.
		{name: "room left beside the reservation", n: n, req: gpus(1), want: true},
		// 8 − 1 − 6 = 1 < 2.
		{name: "would cut into the reservation", n: n, req: gpus(2), want: false},
		// A second pod without walltime: 8 − 2 − 6 = 0 < 1.
		{name: "pods without walltime count at the start", n: node8("a", 10, -1, -1), req: gpus(1), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FitsAt(tc.n, gpus(6), tc.req, at(30)); got != tc.want {
				t.Errorf("FitsAt = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSet(t *testing.T) {
	rank := map[string]int{"a": 1, "b": 2, "c": 3, "d": 0}
	before := func(x, y string) bool { return rank[x] < rank[y] }
	s := NewSet(2)
	for _, k := range []string{"c", "a"} {
		if d := s.Put(&Reservation{Key: k}, before); d != nil {
			t.Fatalf("Put(%s) dropped %s from a set with room", k, d.Key)
		}
	}
	if s.Admit("b", func(o string) bool { return before("b", o) }) != true {
		t.Errorf("b ranks before c, the worst: it should be admitted")
	}
	if d := s.Put(&Reservation{Key: "b"}, before); d == nil || d.Key != "c" {
		t.Errorf("Put(b) on a full set dropped %v, want c", d)
	}
	if s.Admit("c", func(o string) bool { return before("c", o) }) {
		t.Errorf("c ranks after every reservation of a full set: it should not be admitted")
	}
	var keys []string
	for _, r := range s.All() {
		keys = append(keys, r.Key)
	}
	if diff := cmp.Diff([]string{"a", "b"}, keys); diff != "" {
		t.Errorf("keys (-want,+got):\n%s", diff)
	}
	if s.Delete("a") == nil || s.Len() != 1 {
		t.Errorf("Delete(a) did not remove it: %d left", s.Len())
	}
}
