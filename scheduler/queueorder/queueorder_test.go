package queueorder

import (
	"testing"
	"time"
)

func TestLess(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	later := t0.Add(time.Minute)
	cases := []struct {
		name string
		a, b key
		want bool // a before b
	}{
		{name: "higher priority first, whatever the rank", a: key{priority: 10, rank: 9}, b: key{priority: 0, rank: 1}, want: true},
		{name: "lower priority after", a: key{priority: 0}, b: key{priority: 10}, want: false},
		{name: "better fair-share rank first", a: key{rank: 1, since: later}, b: key{rank: 2, since: t0}, want: true},
		{name: "outside fair share (rank 0) before queued pods", a: key{rank: 0, since: later}, b: key{rank: 1, since: t0}, want: true},
		{name: "earlier gang first", a: key{rank: 1, since: t0, gang: "ns/b"}, b: key{rank: 1, since: later, gang: "ns/a"}, want: true},
		// Two gangs submitted in the same second: the key keeps each gang's members together.
		{name: "same time: by gang key", a: key{since: t0, gang: "ns/a", queued: later}, b: key{since: t0, gang: "ns/b", queued: t0}, want: true},
		{name: "same gang: FIFO", a: key{since: t0, gang: "ns/a", queued: t0}, b: key{since: t0, gang: "ns/a", queued: later}, want: true},
		{name: "equal keys: neither first", a: key{since: t0, queued: t0}, b: key{since: t0, queued: t0}, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := less(tc.a, tc.b); got != tc.want {
				t.Errorf("less(a, b) = %v, want %v", got, tc.want)
			}
			if tc.want && less(tc.b, tc.a) {
				t.Errorf("less(b, a) is also true: not a strict order")
			}
		})
	}
}

// Members of two gangs interleaved in arrival order come out grouped by gang.
func TestGangMembersStayTogether(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var keys []key
	for i := range 6 {
		g, since := "ns/a", t0
		if i%2 == 1 {
			g, since = "ns/b", t0.Add(time.Second)
		}
		keys = append(keys, key{since: since, gang: g, queued: t0.Add(time.Duration(i) * time.Millisecond)})
	}
	// Insertion sort with less, as a heap would pop them.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && less(keys[j], keys[j-1]); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	var got string
	for _, k := range keys {
		got += k.gang[3:]
	}
	if got != "aaabbb" {
		t.Errorf("order by gang = %s, want aaabbb", got)
	}
}
