package backfill

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	config "github.com/kubehtc/kubehtc/apis/config/v1alpha1"
)

func TestWalltime(t *testing.T) {
	args, err := config.DecodeBackfillArgs(&config.BackfillArgs{DefaultWalltimes: []config.DefaultWalltime{
		{Namespace: "atlas", Class: "pilot", Walltime: metav1.Duration{Duration: 48 * time.Hour}},
		{Class: "analysis", Walltime: metav1.Duration{Duration: time.Hour}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ten := int64(600)
	pod := func(ns, class, annotation string, deadline *int64) *v1.Pod {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: map[string]string{"kubehtc.io/class": class}}}
		if annotation != "" {
			p.Annotations = map[string]string{config.WalltimeAnnotation: annotation}
		}
		p.Spec.ActiveDeadlineSeconds = deadline
		return p
	}
	tests := []struct {
		name string
		pod  *v1.Pod
		want time.Duration
	}{
		{"activeDeadlineSeconds wins over the annotation", pod("cms", "", "2h", &ten), 10 * time.Minute},
		{"annotation", pod("cms", "", "90m", nil), 90 * time.Minute},
		{"bad annotation falls through to the defaults", pod("cms", "analysis", "soon", nil), time.Hour},
		{"default by namespace and class", pod("atlas", "pilot", "", nil), 48 * time.Hour},
		{"default by class only", pod("lhcb", "analysis", "", nil), time.Hour},
		{"no match: no walltime", pod("lhcb", "pilot", "", nil), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := walltime(tc.pod, args); got != tc.want {
				t.Errorf("walltime = %v, want %v", got, tc.want)
			}
		})
	}
}
