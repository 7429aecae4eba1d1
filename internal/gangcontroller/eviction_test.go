package gangcontroller

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// boundAtMinute sets pod's PodScheduled=True condition at minute m.
func boundAtMinute(p corev1.Pod, m int) corev1.Pod {
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: minute(m)})
	return p
}

// preempted marks p as the scheduler marks a preemption victim, at minute m (with the given reason).
func preempted(p corev1.Pod, m int, reason string) corev1.Pod {
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: minute(m)})
	return p
}

func TestPreemptionOf(t *testing.T) {
	cases := []struct {
		name string
		pod  corev1.Pod
		want bool
	}{
		{name: "no condition", pod: member("a", 0, "n", corev1.PodRunning)},
		{name: "preempted by the scheduler", pod: preempted(member("a", 0, "n", corev1.PodRunning), 5, corev1.PodReasonPreemptionByScheduler), want: true},
		{name: "terminated by the kubelet", pod: preempted(member("a", 0, "n", corev1.PodRunning), 5, corev1.PodReasonTerminationByKubelet)},
		{name: "condition false", pod: func() corev1.Pod {
			p := preempted(member("a", 0, "n", corev1.PodRunning), 5, corev1.PodReasonPreemptionByScheduler)
			p.Status.Conditions[0].Status = corev1.ConditionFalse
			return p
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, got := preemptionOf(&tc.pod)
			if got != tc.want {
				t.Fatalf("preemptionOf = %t, want %t", got, tc.want)
			}
			if got && (p.name != "a" || !p.at.Equal(minute(5).Time)) {
				t.Errorf("preemption = %+v, want member a at minute 5", p)
			}
		})
	}
}

func TestEvictions(t *testing.T) {
	victim := preemption{pod: "uid-v", name: "v", at: minute(10).Time}
	cases := []struct {
		name        string
		members     []corev1.Pod
		preemptions []preemption
		want        []string // evicted member: cause
	}{
		{
			name:    "no preemption evicts nothing",
			members: []corev1.Pod{boundAtMinute(member("a", 0, "n", corev1.PodRunning), 1)},
		},
		{
			name: "bound, running and not leaving members are evicted",
			members: []corev1.Pod{
				boundAtMinute(member("b", 0, "n", corev1.PodRunning), 1),
				boundAtMinute(member("a", 0, "n", corev1.PodPending), 1),
				member("unbound", 0, "", corev1.PodPending),
				boundAtMinute(member("done", 0, "n", corev1.PodSucceeded), 1),
				boundAtMinute(member("failed", 0, "n", corev1.PodFailed), 1),
				leaving(boundAtMinute(member("leaving", 0, "n", corev1.PodRunning), 1)),
			},
			preemptions: []preemption{victim},
			want:        []string{"a: v", "b: v"},
		},
		{
			name: "members bound after the preemption's second are a new attempt",
			members: []corev1.Pod{
				boundAtMinute(member("old", 0, "n", corev1.PodRunning), 10),
				boundAtMinute(member("new", 0, "n", corev1.PodRunning), 11),
			},
			preemptions: []preemption{victim},
			want:        []string{"old: v"},
		},
		{
			name: "without PodScheduled the creation time counts",
			members: []corev1.Pod{
				member("created-before", 9, "n", corev1.PodRunning),
				member("created-after", 12, "n", corev1.PodRunning),
			},
			preemptions: []preemption{victim},
			want:        []string{"created-before: v"},
		},
		{
			name: "the earliest preemption is the cause",
			members: []corev1.Pod{
				boundAtMinute(member("a", 0, "n", corev1.PodRunning), 1),
				boundAtMinute(member("b", 0, "n", corev1.PodRunning), 15),
			},
			preemptions: []preemption{{pod: "uid-w", name: "w", at: minute(20).Time}, victim},
			want:        []string{"a: v", "b: w"},
		},
		{
			name:        "a victim not yet deleted is evicted with its gang",
			members:     []corev1.Pod{preempted(boundAtMinute(member("v", 0, "n", corev1.PodRunning), 1), 10, corev1.PodReasonPreemptionByScheduler)},
			preemptions: []preemption{victim},
			want:        []string{"v: v"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range evictions(tc.members, tc.preemptions) {
				got = append(got, e.pod.Name+": "+e.cause.name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("evictions (-want,+got):\n%s", diff)
			}
		})
	}
}
