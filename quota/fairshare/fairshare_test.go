package fairshare

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

var approx = cmpopts.EquateApprox(0, 1e-9)

func TestDecay(t *testing.T) {
	h := time.Hour
	cases := []struct {
		name    string
		prev, u float64
		dt      time.Duration
		want    float64
	}{
		// HTCondor's example: 10 cores for one half-life, starting from nothing: 0.5·0 + 0.5·10 = 5.
		{"10 cores for one half-life", 0, 10, h, 5},
		// Then nothing: the decayed usage halves each half-life: 5 → 2.5 → 1.25.
		{"idle one half-life", 5, 0, h, 2.5},
		{"idle two half-lives", 5, 0, 2 * h, 1.25},
		// Two half-lives of 10 cores from nothing: β = 0.25, 0.25·0 + 0.75·10 = 7.5.
		{"10 cores for two half-lives", 0, 10, 2 * h, 7.5},
		// Steady usage stays: β·10 + (1−β)·10 = 10.
		{"steady", 10, 10, 3 * h, 10},
		// No time passed: β = 1, U unchanged whatever u is.
		{"no time", 4, 100, 0, 4},
		// Negative time (clock skew) is no time.
		{"negative time", 4, 100, -time.Minute, 4},
		// Negative usage counts as 0: 0.5·8 + 0.5·0 = 4.
		{"negative usage", 8, -3, h, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Decay(tc.prev, tc.u, tc.dt, h), approx); diff != "" {
				t.Errorf("Decay(%g, %g, %s) (-want,+got):\n%s", tc.prev, tc.u, tc.dt, diff)
			}
		})
	}
}

// Decaying in many intervals equals decaying once: β(a)·β(b) = β(a+b). The controller ticks every interval
// and the scheduler projects the last status to now in one step; they must agree.
func TestDecayStepsCompose(t *testing.T) {
	h := 10 * time.Minute
	u := 0.0
	for range 60 {
		u = Decay(u, 10, h/60, h)
	}
	// 60 steps of h/60 at 10 cores from 0: one half-life, 5.
	if diff := cmp.Diff(5.0, u, approx); diff != "" {
		t.Errorf("60 steps (-want,+got):\n%s", diff)
	}
}

func rootQueue(p *kubehtcv1alpha1.FairSharePolicy) kubehtcv1alpha1.Queue {
	return kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: "root"}, Spec: kubehtcv1alpha1.QueueSpec{Policy: p}}
}

func TestPolicyFor(t *testing.T) {
	cases := []struct {
		name         string
		policy       *kubehtcv1alpha1.FairSharePolicy
		wantHalfLife time.Duration
		wantInterval time.Duration
		wantErr      error
		req          corev1.ResourceList
		wantCharge   float64
	}{
		{
			name: "no policy: defaults", wantHalfLife: 24 * time.Hour, wantInterval: time.Minute,
			// Default 4Gi per core: 16Gi/4Gi = 4 > 2 cores.
			req: corev1.ResourceList{"cpu": resource.MustParse("2"), "memory": resource.MustParse("16Gi")}, wantCharge: 4,
		},
		{
			name:   "zero half-life is refused, not defaulted",
			policy: &kubehtcv1alpha1.FairSharePolicy{AccountingInterval: metav1.Duration{Duration: time.Second}},
			// Never a silent 0.
			wantErr: ErrZeroHalfLife,
		},
		{
			name: "custom",
			policy: &kubehtcv1alpha1.FairSharePolicy{
				HalfLife:        metav1.Duration{Duration: 30 * time.Second},
				CoreEquivalents: corev1.ResourceList{"cpu": resource.MustParse("1"), "nvidia.com/gpu": resource.MustParse("100m")},
			},
			wantHalfLife: 30 * time.Second, wantInterval: time.Minute,
			// A GPU worth 10 cores (1/0.1); memory is not charged here: max(1, 10) = 10.
			req: corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("64Gi"), "nvidia.com/gpu": resource.MustParse("1")}, wantCharge: 10,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := rootQueue(tc.policy)
			p, err := PolicyFor(&root)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error: want %v, got %v", tc.wantErr, err)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff([]time.Duration{tc.wantHalfLife, tc.wantInterval}, []time.Duration{p.HalfLife, p.AccountingInterval}); diff != "" {
				t.Errorf("half-life, interval (-want,+got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCharge, p.Charge(tc.req), approx); diff != "" {
				t.Errorf("charge (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestCharge(t *testing.T) {
	p, err := PolicyFor(nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		req  corev1.ResourceList
		want float64
	}{
		{"one core", corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("2Gi")}, 1},                    // max(1, 2/4)
		{"memory dominant", corev1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("8Gi")}, 2},          // max(0.5, 8/4)
		{"one GPU worth 8 cores", corev1.ResourceList{"cpu": resource.MustParse("2"), "nvidia.com/gpu": resource.MustParse("1")}, 8}, // max(2, 1/0.125)
		{"uncharged resource", corev1.ResourceList{"ephemeral-storage": resource.MustParse("100Gi")}, 0},
		{"nothing", nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, p.Charge(tc.req), approx); diff != "" {
				t.Errorf("(-want,+got):\n%s", diff)
			}
		})
	}
}

// q builds a queue; opts set guaranteed cores, acceptSurplus, lendable percent.
func q(name, parent string, weight int32) kubehtcv1alpha1.Queue {
	return kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: kubehtcv1alpha1.QueueSpec{Parent: parent, Weight: weight}}
}

func cores(n string) corev1.ResourceList { return corev1.ResourceList{"cpu": resource.MustParse(n)} }

func build(t testing.TB, qs ...kubehtcv1alpha1.Queue) *Tree {
	t.Helper()
	tr, skipped, err := Build(append([]kubehtcv1alpha1.Queue{rootQueue(nil)}, qs...))
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) > 0 {
		t.Fatalf("skipped: %v", skipped)
	}
	return tr
}

func TestBuild(t *testing.T) {
	cases := []struct {
		name        string
		queues      []kubehtcv1alpha1.Queue
		wantErr     bool
		wantSkipped []string
		wantShares  map[string]float64
	}{
		{name: "no root", queues: []kubehtcv1alpha1.Queue{q("a", "root", 1)}, wantErr: true},
		{
			name: "shares down the tree",
			queues: []kubehtcv1alpha1.Queue{rootQueue(nil), q("atlas", "root", 50), q("cms", "root", 30), q("lhcb", "root", 20),
				q("atlas-prod", "atlas", 3), q("atlas-user", "atlas", 1)},
			// atlas 50/100; atlas-prod 0.5·3/4 = 0.375, atlas-user 0.5·1/4 = 0.125.
			wantShares: map[string]float64{"root": 1, "atlas": 0.5, "cms": 0.3, "lhcb": 0.2, "atlas-prod": 0.375, "atlas-user": 0.125},
		},
		{
			name:        "orphans and cycles are skipped",
			queues:      []kubehtcv1alpha1.Queue{rootQueue(nil), q("a", "root", 1), q("orphan", "nope", 1), q("x", "y", 1), q("y", "x", 1)},
			wantSkipped: []string{"orphan", "x", "y"},
			wantShares:  map[string]float64{"root": 1, "a": 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, skipped, err := Build(tc.queues)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error: %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			var gotSkipped []string
			for n := range skipped {
				gotSkipped = append(gotSkipped, n)
			}
			if diff := cmp.Diff(tc.wantSkipped, gotSkipped, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("skipped (-want,+got):\n%s", diff)
			}
			got := map[string]float64{}
			for _, n := range tr.Nodes() {
				got[n.Name] = n.Share
			}
			if diff := cmp.Diff(tc.wantShares, got, approx); diff != "" {
				t.Errorf("shares (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestDivide(t *testing.T) {
	withG := func(x kubehtcv1alpha1.Queue, g string) kubehtcv1alpha1.Queue { x.Spec.Guaranteed = cores(g); return x }
	noSurplus := func(x kubehtcv1alpha1.Queue) kubehtcv1alpha1.Queue { x.Spec.AcceptSurplus = ptr.To(false); return x }
	lend := func(x kubehtcv1alpha1.Queue, pct int32) kubehtcv1alpha1.Queue {
		x.Spec.LendablePercent = ptr.To(pct)
		return x
	}
	cases := []struct {
		name        string
		queues      []kubehtcv1alpha1.Queue
		usage       map[string]float64
		capacity    float64
		wantTargets map[string]float64
		wantCaps    map[string]float64
	}{
		{
			name:     "50/30/20 of 100 cores, idle",
			queues:   []kubehtcv1alpha1.Queue{q("a", "root", 50), q("b", "root", 30), q("c", "root", 20)},
			capacity: 100,
			// Targets by weight; idle siblings lend everything, so each may use all 100.
			wantTargets: map[string]float64{"root": 100, "a": 50, "b": 30, "c": 20},
			wantCaps:    map[string]float64{"root": 100, "a": 100, "b": 100, "c": 100},
		},
		{
			name:     "guarantee raises a target, the others shrink",
			queues:   []kubehtcv1alpha1.Queue{withG(q("a", "root", 1), "70"), q("b", "root", 1)},
			capacity: 100,
			// a: max(50, 70) = 70; b: 50; sum 120, excess 20 taken from what is above guarantees (a 0, b 50): b = 30.
			wantTargets: map[string]float64{"root": 100, "a": 70, "b": 30},
			wantCaps:    map[string]float64{"root": 100, "a": 100, "b": 100},
		},
		{
			name:     "guarantees overbook the parent: scaled together",
			queues:   []kubehtcv1alpha1.Queue{withG(q("a", "root", 1), "90"), withG(q("b", "root", 1), "60")},
			capacity: 100,
			// Σg = 150 > 100: a = 100·90/150 = 60, b = 100·60/150 = 40.
			wantTargets: map[string]float64{"root": 100, "a": 60, "b": 40},
			wantCaps:    map[string]float64{"root": 100, "a": 100, "b": 100},
		},
		{
			name:     "no surplus caps at the target; usage of others reduces caps",
			queues:   []kubehtcv1alpha1.Queue{noSurplus(q("a", "root", 1)), q("b", "root", 1)},
			usage:    map[string]float64{"b": 30},
			capacity: 100,
			// a: min(target 50, 100 − 30 used by b) = 50; b: 100 − 0 = 100.
			wantTargets: map[string]float64{"root": 100, "a": 50, "b": 50},
			wantCaps:    map[string]float64{"root": 100, "a": 50, "b": 100},
		},
		{
			name:     "an idle queue lending half holds the rest back",
			queues:   []kubehtcv1alpha1.Queue{lend(q("a", "root", 1), 50), q("b", "root", 1)},
			usage:    map[string]float64{"a": 10},
			capacity: 100,
			// a holds (1−0.5)·50 − 10 = 15; b: 100 − (10 used + 15 held) = 75; a: 100 − 0 = 100.
			wantTargets: map[string]float64{"root": 100, "a": 50, "b": 50},
			wantCaps:    map[string]float64{"root": 100, "a": 100, "b": 75},
		},
		{
			name:     "two levels",
			queues:   []kubehtcv1alpha1.Queue{q("vo", "root", 3), q("other", "root", 1), q("g1", "vo", 1), q("g2", "vo", 2)},
			usage:    map[string]float64{"other": 20, "g2": 10},
			capacity: 80,
			// vo 60, other 20; g1 60/3 = 20, g2 40. vo cap 80 − 20 = 60; g1 60 − 10 = 50; g2 60 − 0 = 60.
			wantTargets: map[string]float64{"root": 80, "vo": 60, "other": 20, "g1": 20, "g2": 40},
			wantCaps:    map[string]float64{"root": 80, "vo": 60, "other": 70, "g1": 50, "g2": 60},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := build(t, tc.queues...)
			for leaf, u := range tc.usage {
				tr.AddUsage(leaf, "u", nil, u, 0)
			}
			tr.Divide(tc.capacity)
			gotT, gotC := map[string]float64{}, map[string]float64{}
			for _, n := range tr.Nodes() {
				gotT[n.Name], gotC[n.Name] = n.Target, n.Cap
			}
			if diff := cmp.Diff(tc.wantTargets, gotT, approx); diff != "" {
				t.Errorf("targets (-want,+got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCaps, gotC, approx); diff != "" {
				t.Errorf("caps (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestRank(t *testing.T) {
	type use struct {
		leaf, user string
		decayed    float64
	}
	withFactor := func(x kubehtcv1alpha1.Queue, f int32) kubehtcv1alpha1.Queue { x.Spec.PriorityFactor = f; return x }
	cases := []struct {
		name   string
		queues []kubehtcv1alpha1.Queue
		usage  []use
		want   []Entry
	}{
		{
			name:   "less usage per share goes first",
			queues: []kubehtcv1alpha1.Queue{q("a", "root", 50), q("b", "root", 30), q("c", "root", 20)},
			// U shares: a 50/100, b 10/100, c 40/100. LF: a 0.5/0.5 = 1, b 0.3/0.1 = 3, c 0.2/0.4 = 0.5.
			usage: []use{{"a", "x", 50}, {"b", "y", 10}, {"c", "z", 40}},
			want:  []Entry{{"b", "y"}, {"a", "x"}, {"c", "z"}},
		},
		{
			name:   "a VO ahead ranks all its users ahead",
			queues: []kubehtcv1alpha1.Queue{q("vo1", "root", 1), q("vo2", "root", 1), q("g1", "vo1", 1), q("g2", "vo2", 1)},
			// vo1 used 30 (20+10), vo2 used 40: vo1 first, so its heavy user (20) still outranks vo2's light one (1).
			usage: []use{{"g1", "heavy", 20}, {"g1", "light", 10}, {"g2", "big", 39}, {"g2", "small", 1}},
			want:  []Entry{{"g1", "light"}, {"g1", "heavy"}, {"g2", "small"}, {"g2", "big"}},
		},
		{
			name:   "no usage ranks ahead of any usage",
			queues: []kubehtcv1alpha1.Queue{q("a", "root", 1), q("b", "root", 100)},
			// a: LF = ∞; b: LF finite.
			usage: []use{{"b", "u", 1}, {"a", "v", 0}},
			want:  []Entry{{"a", "v"}, {"b", "u"}},
		},
		{
			name:   "priority factor multiplies usage",
			queues: []kubehtcv1alpha1.Queue{withFactor(q("a", "root", 1), 4), q("b", "root", 1)},
			// a: 4·10 = 40 effective vs b 20: b first.
			usage: []use{{"a", "u", 10}, {"b", "u", 20}},
			want:  []Entry{{"b", "u"}, {"a", "u"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := build(t, tc.queues...)
			for _, u := range tc.usage {
				tr.AddUsage(u.leaf, u.user, nil, 0, u.decayed)
			}
			r := tr.Rank()
			if diff := cmp.Diff(tc.want, r.Order); diff != "" {
				t.Errorf("order (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestRankUnknownUser(t *testing.T) {
	tr := build(t, q("a", "root", 1), q("b", "root", 1))
	tr.AddUsage("a", "old", nil, 0, 5)
	tr.AddUsage("b", "old", nil, 0, 10)
	r := tr.Rank()
	// a (5) before b (10). Slots: a's new users 1, a/old 2, b's new users 3, b/old 4; unknown leaf after all.
	got := []int{r.Rank("a", "new"), r.Rank("a", "old"), r.Rank("b", "new"), r.Rank("b", "old"), r.Rank("nope", "x")}
	if diff := cmp.Diff([]int{1, 2, 3, 4, 5}, got); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
}

func TestCanReclaim(t *testing.T) {
	// Capacity 100: vo-a target 50 (g1 25, g2 25), vo-b 50.
	cases := []struct {
		name  string
		usage map[string]float64
		q, w  string
		c, v  float64
		want  bool
	}{
		// a uses 10 < 50, b uses 90 > 50: moving 1 keeps a at 11 ≤ 50 (g1 11 ≤ 25) and b at 89 ≥ 50.
		{"under takes from over", map[string]float64{"g1": 10, "b": 90}, "g1", "b", 1, 1, true},
		// b is exactly at its target: taking 1 would put it below.
		{"victim at its target", map[string]float64{"g1": 10, "b": 50}, "g1", "b", 1, 1, false},
		// g1 at 25 = its target: one more core exceeds it, though vo-a (25) is below 50.
		{"preemptor at its target", map[string]float64{"g1": 25, "b": 75}, "g1", "b", 1, 1, false},
		// Within vo-a: g2 over (40 > 25), g1 under (5): only the levels below vo-a count.
		{"siblings", map[string]float64{"g1": 5, "g2": 40, "b": 55}, "g1", "g2", 2, 2, true},
		{"same queue", map[string]float64{"g1": 5}, "g1", "g1", 1, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := build(t, q("vo-a", "root", 1), q("b", "root", 1), q("g1", "vo-a", 1), q("g2", "vo-a", 1))
			for leaf, u := range tc.usage {
				tr.AddUsage(leaf, "u", nil, u, 0)
			}
			tr.Divide(100)
			if got := tr.CanReclaim(tc.q, tc.w, tc.c, tc.v); got != tc.want {
				t.Errorf("CanReclaim(%s ← %s) = %v, want %v", tc.q, tc.w, got, tc.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	limited := q("a", "root", 1)
	limited.Spec.Limit = cores("10")
	tr := build(t, limited, q("b", "root", 1))
	tr.AddUsage("a", "u", cores("9"), 9, 0)
	tr.Divide(100)
	// 9 + 1 = 10 ≤ 10 fits; 9 + 2 = 11 > 10 does not.
	if n, _ := tr.ExceedsLimit("a", cores("1")); n != nil {
		t.Errorf("1 core: exceeds %s", n.Name)
	}
	if n, r := tr.ExceedsLimit("a", cores("2")); n == nil || n.Name != "a" || r != "cpu" {
		t.Errorf("2 cores: want a/cpu, got %v/%s", n, r)
	}
	// b's cap: 100 − 9 used by a = 91.
	if n := tr.ExceedsCap("b", 91); n != nil {
		t.Errorf("b: 91 ≤ cap %g reported as exceeding %s", tr.Node("b").Cap, n.Name)
	}
	if n := tr.ExceedsCap("b", 92); n == nil || n.Name != "b" {
		t.Errorf("b: 92 > cap %g not reported", tr.Node("b").Cap)
	}
	// a: (9 − 50)/50 = −0.82.
	if diff := cmp.Diff(-0.82, tr.Overage("a"), approx); diff != "" {
		t.Errorf("overage (-want,+got):\n%s", diff)
	}
}
