package clustermode

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	kubehtcscheduler "github.com/kubehtc/kubehtc/scheduler"
	"github.com/kubehtc/kubehtc/simulations/scenario"
)

func TestCompressPolicy(t *testing.T) {
	policy := func(halfLife, interval time.Duration) *kubehtcv1alpha1.FairSharePolicy {
		return &kubehtcv1alpha1.FairSharePolicy{HalfLife: metav1.Duration{Duration: halfLife}, AccountingInterval: metav1.Duration{Duration: interval}}
	}
	cases := []struct {
		name               string
		halfLife, interval time.Duration
		compression        float64
		want               *kubehtcv1alpha1.FairSharePolicy
	}{
		// 24h/60 = 24m, 1m/60 = 1s.
		{name: "defaults at 60", compression: 60, want: policy(24*time.Minute, time.Second)},
		// 24h/30 = 48m, 1m/30 = 2s.
		{name: "defaults at 30", compression: 30, want: policy(48*time.Minute, 2*time.Second)},
		// 1m/120 = 0.5s, raised to the CRD's 1s minimum.
		{name: "interval below the CRD minimum", compression: 120, want: policy(12*time.Minute, time.Second)},
		// 1h/7 = 514.285714s, rounded to ms; 10m/7 = 85.714285s.
		{name: "rounded to milliseconds", halfLife: time.Hour, interval: 10 * time.Minute, compression: 7,
			want: policy(514286*time.Millisecond, 85714*time.Millisecond)},
		// No compression: the scenario's durations as given.
		{name: "compression 1", halfLife: 2 * time.Hour, interval: 5 * time.Minute, compression: 1, want: policy(2*time.Hour, 5*time.Minute)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := CompressPolicy(tc.halfLife, tc.interval, tc.compression)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("CompressPolicy(%s, %s, %g) (-want,+got):\n%s", tc.halfLife, tc.interval, tc.compression, d)
			}
		})
	}
}

func TestWeights(t *testing.T) {
	cases := []struct {
		name   string
		queues []scenario.Queue
		want   map[string]int32
	}{
		// 75/100·1000 = 750, 25/100·1000 = 250.
		{name: "percentages", queues: []scenario.Queue{{Name: "atlas", Share: 75}, {Name: "cms", Share: 25}}, want: map[string]int32{"atlas": 750, "cms": 250}},
		// 1/3·1000 = 333.3 → 333 each: the ratio is kept.
		{name: "thirds", queues: []scenario.Queue{{Name: "a", Share: 1}, {Name: "b", Share: 1}, {Name: "c", Share: 1}}, want: map[string]int32{"a": 333, "b": 333, "c": 333}},
		// 0.0001/100.0001·1000 = 0.001 → raised to the CRD's minimum weight 1.
		{name: "tiny share", queues: []scenario.Queue{{Name: "big", Share: 100}, {Name: "tiny", Share: 0.0001}}, want: map[string]int32{"big": 1000, "tiny": 1}},
		// Fractional shares: 0.6/1.0·1000 = 600, 0.4 → 400.
		{name: "fractions", queues: []scenario.Queue{{Name: "x", Share: 0.6}, {Name: "y", Share: 0.4}}, want: map[string]int32{"x": 600, "y": 400}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, Weights(tc.queues)); d != "" {
				t.Errorf("Weights (-want,+got):\n%s", d)
			}
		})
	}
}

// TestSchedulerConfig checks that cluster mode's scheduler configuration is kubehtc's with only the back-off
// changed: the same profiles, plugins and plugin args.
func TestSchedulerConfig(t *testing.T) {
	data, err := SchedulerConfig()
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := yaml.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(kubehtcscheduler.Config, &want); err != nil {
		t.Fatal(err)
	}
	want["podInitialBackoffSeconds"] = float64(BackoffSeconds)
	want["podMaxBackoffSeconds"] = float64(BackoffSeconds)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("SchedulerConfig (-want,+got):\n%s", d)
	}
}
