package demo

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// backlogPod is a backlog pod of namespace ns requesting cpu, in phase; bound to a node unless Pending.
func backlogPod(ns, cpu string, phase corev1.PodPhase) corev1.Pod {
	node := "fairshare-0"
	if phase == corev1.PodPending {
		node = ""
	}
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: map[string]string{demoLabel: sharePart}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
		Status: corev1.PodStatus{Phase: phase},
	}
}

func TestShareMeter(t *testing.T) {
	type obs struct {
		at   time.Duration
		pods []corev1.Pod
	}
	running := corev1.PodRunning
	deleting := backlogPod("vo-cms", "1", running)
	deleting.DeletionTimestamp = &metav1.Time{}
	web := backlogPod("web", "1", running) // not a VO's namespace
	unlabelled := backlogPod("vo-cms", "4", running)
	unlabelled.Labels = nil
	boundPending := backlogPod("vo-atlas", "1", corev1.PodPending)
	boundPending.Spec.NodeName = "fairshare-1"
	target := map[string]float64{"atlas": 0.5, "cms": 0.3, "lhcb": 0.2}
	cases := []struct {
		name string
		obs  []obs
		want *ShareSummary
	}{{
		// Window 4 s–14 s (Runtime 0.5). Each observation's cores count until the next one:
		// atlas 2 cores over 1–5 s → 1 s in the window = 2; atlas 2 and cms 1 over 5–11 s → 12 and 6;
		// lhcb 1 over 11–15 s → 3 s in the window = 3. In all 23 core-seconds: 14/23, 6/23, 3/23.
		name: "edges of the window cut the intervals",
		obs: []obs{
			{1 * time.Second, []corev1.Pod{backlogPod("vo-atlas", "1", running), backlogPod("vo-atlas", "1", running)}},
			{5 * time.Second, []corev1.Pod{backlogPod("vo-atlas", "2", running), backlogPod("vo-cms", "1", running)}},
			{11 * time.Second, []corev1.Pod{backlogPod("vo-lhcb", "1", running)}},
			{15 * time.Second, nil},
		},
		want: &ShareSummary{From: 4 * time.Second, To: 14 * time.Second, VOs: []string{"atlas", "cms", "lhcb"}, Target: target,
			Delivered: map[string]float64{"atlas": 14.0 / 23, "cms": 6.0 / 23, "lhcb": 3.0 / 23}, CoreSeconds: 23},
	}, {
		// Only bound, unfinished, labelled pods of the VOs' namespaces that are not being deleted count:
		// atlas's running 500m and bound 1 (Pending: the node has not started it yet) over 5–9 s = 6; cms nothing.
		name: "unbound, finished, deleted and other pods do not count",
		obs: []obs{
			{5 * time.Second, []corev1.Pod{backlogPod("vo-atlas", "500m", running), boundPending, backlogPod("vo-cms", "1", corev1.PodPending),
				backlogPod("vo-cms", "1", corev1.PodSucceeded), deleting, web, unlabelled}},
			{9 * time.Second, nil},
		},
		want: &ShareSummary{From: 4 * time.Second, To: 14 * time.Second, VOs: []string{"atlas", "cms", "lhcb"}, Target: target,
			Delivered: map[string]float64{"atlas": 1, "cms": 0, "lhcb": 0}, CoreSeconds: 6},
	}, {
		name: "nothing inside the window",
		obs: []obs{
			{0, []corev1.Pod{backlogPod("vo-atlas", "1", running)}},
			{4 * time.Second, nil},
			{14 * time.Second, []corev1.Pod{backlogPod("vo-atlas", "1", running)}},
			{20 * time.Second, nil},
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newShareMeter(Scale{Factor: 1, Runtime: 0.5})
			for _, o := range tc.obs {
				m.observe(o.at, o.pods)
			}
			if diff := cmp.Diff(tc.want, m.summary()); diff != "" {
				t.Errorf("summary (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestShareSummaryFormat(t *testing.T) {
	cases := []struct {
		name         string
		delivered    map[string]float64
		wantText     string
		wantMaxPoint float64
	}{
		// |0.49−0.5| = 1, |0.32−0.3| = 2, |0.19−0.2| = 1 point.
		{"close", map[string]float64{"atlas": 0.49, "cms": 0.32, "lhcb": 0.19}, "49/32/19", 2},
		// FIFO: a third each; atlas 50 − 33.3 = 16.7 points short.
		{"equal", map[string]float64{"atlas": 1.0 / 3, "cms": 1.0 / 3, "lhcb": 1.0 / 3}, "33/33/33", 50 - 100.0/3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &ShareSummary{VOs: []string{"atlas", "cms", "lhcb"}, Target: map[string]float64{"atlas": 0.5, "cms": 0.3, "lhcb": 0.2}, Delivered: tc.delivered}
			got := fmt.Sprintf("%s %.6f", s.percentages(s.Delivered), s.MaxDeviation())
			want := fmt.Sprintf("%s %.6f", tc.wantText, tc.wantMaxPoint)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("formatted (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestShareBacklog(t *testing.T) {
	// Window end 14 s at Runtime 0.5 (28 s at 1), pods of 2 s (4 s) on average: 1.3 × 0.5 × 20 cores ×
	// 14 s / 2 s = 91 pods per VO, at both scales.
	for _, rt := range []float64{0.5, 1} {
		if diff := cmp.Diff(91, shareBacklog(Scale{Factor: 1, Runtime: rt})); diff != "" {
			t.Errorf("runtime scale %v: backlog per VO (-want,+got):\n%s", rt, diff)
		}
	}
}
