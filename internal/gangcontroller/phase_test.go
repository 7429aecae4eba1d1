package gangcontroller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"
)

const (
	pending    = schedv1alpha1.PodGroupPending
	scheduling = schedv1alpha1.PodGroupScheduling
	running    = schedv1alpha1.PodGroupRunning
	finished   = schedv1alpha1.PodGroupFinished
	failed     = schedv1alpha1.PodGroupFailed
)

func TestPhase(t *testing.T) {
	cases := []struct {
		name     string
		min      int32
		c        Counts
		previous schedv1alpha1.PodGroupPhase
		want     schedv1alpha1.PodGroupPhase
	}{
		{name: "new group without members", min: 3, want: pending},
		{name: "members exist, none bound", min: 3, c: Counts{Viable: 3}, previous: pending, want: pending},
		{name: "part of the gang bound", min: 3, c: Counts{Viable: 3, Scheduled: 2, Running: 2}, previous: pending, want: pending},
		{name: "gang bound, not running", min: 3, c: Counts{Viable: 3, Scheduled: 3}, previous: pending, want: scheduling},
		{name: "gang bound, part running", min: 3, c: Counts{Viable: 3, Scheduled: 3, Running: 2}, previous: scheduling, want: scheduling},
		{name: "gang running", min: 3, c: Counts{Viable: 3, Scheduled: 3, Running: 3}, previous: scheduling, want: running},
		// 2 running + 1 succeeded = 3 ≥ minMember 3.
		{name: "one member finished early", min: 3, c: Counts{Viable: 3, Scheduled: 3, Running: 2, Succeeded: 1}, previous: running, want: running},
		{name: "all succeeded", min: 3, c: Counts{Viable: 3, Scheduled: 3, Succeeded: 3}, previous: running, want: finished},
		// succeeded 3 ≥ 3 wins over the failure.
		{name: "minMember succeeded, a spare failed", min: 3, c: Counts{Viable: 3, Scheduled: 3, Succeeded: 3, Failed: 1}, previous: running, want: finished},
		// viable 2 < 3.
		{name: "a member failed, no spare", min: 3, c: Counts{Viable: 2, Scheduled: 2, Running: 2, Failed: 1}, previous: running, want: failed},
		// viable 3 ≥ 3: the spare can still make the gang.
		{name: "a member failed, a spare remains", min: 3, c: Counts{Viable: 3, Scheduled: 3, Running: 3, Failed: 1}, previous: running, want: running},
		{name: "finished pods cleaned up", min: 3, previous: finished, want: finished},
		{name: "failed pods cleaned up", min: 3, c: Counts{}, previous: failed, want: failed},
		{name: "new attempt after failure", min: 3, c: Counts{Viable: 3}, previous: failed, want: pending},
		{name: "gang evicted, members leaving", min: 3, previous: running, want: pending},
		{name: "minMember 0 counts as 1", min: 0, c: Counts{Viable: 1, Scheduled: 1, Running: 1}, previous: pending, want: running},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Phase(tc.min, tc.c, tc.previous)); diff != "" {
				t.Errorf("Phase(%d, %+v, %q) (-want,+got):\n%s", tc.min, tc.c, tc.previous, diff)
			}
		})
	}
}

// member builds a member pod: created at minute created, bound to node (if not empty), in phase.
func member(name string, created int, node string, phase corev1.PodPhase) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), CreationTimestamp: minute(created),
			Labels: map[string]string{schedv1alpha1.PodGroupLabel: "g"}},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: phase},
	}
}

var epoch = time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)

func minute(m int) metav1.Time { return metav1.NewTime(epoch.Add(time.Duration(m) * time.Minute)) }

func leaving(p corev1.Pod) corev1.Pod {
	t := minute(59)
	p.DeletionTimestamp = &t
	return p
}

func TestCountMembers(t *testing.T) {
	pods := []corev1.Pod{
		member("pending", 0, "", corev1.PodPending),
		member("bound", 0, "n1", corev1.PodPending),
		member("running", 0, "n1", corev1.PodRunning),
		member("succeeded", 0, "n1", corev1.PodSucceeded),
		member("failed", 0, "n1", corev1.PodFailed),
		leaving(member("running-leaving", 0, "n1", corev1.PodRunning)),
		leaving(member("succeeded-deleted", 0, "n1", corev1.PodSucceeded)),
		leaving(member("failed-deleted", 0, "n1", corev1.PodFailed)),
	}
	// Viable: pending, bound, running, succeeded, succeeded-deleted. Scheduled: those of them with a node.
	want := Counts{Running: 1, Succeeded: 2, Failed: 2, Scheduled: 4, Viable: 5}
	if diff := cmp.Diff(want, CountMembers(pods)); diff != "" {
		t.Errorf("CountMembers (-want,+got):\n%s", diff)
	}
}

func TestStatus(t *testing.T) {
	cases := []struct {
		name     string
		previous schedv1alpha1.PodGroupStatus
		pods     []corev1.Pod
		want     schedv1alpha1.PodGroupStatus
	}{
		{
			name: "no members: no start time",
			want: schedv1alpha1.PodGroupStatus{Phase: pending},
		},
		{
			name: "start time is the oldest pending or running member's creation",
			pods: []corev1.Pod{member("a", 5, "", corev1.PodPending), member("b", 3, "", corev1.PodPending), leaving(member("c", 1, "n", corev1.PodRunning))},
			want: schedv1alpha1.PodGroupStatus{Phase: pending, ScheduleStartTime: minute(3)},
		},
		{
			name:     "start time is kept",
			previous: schedv1alpha1.PodGroupStatus{Phase: pending, ScheduleStartTime: minute(3)},
			pods:     []corev1.Pod{member("a", 1, "n", corev1.PodRunning), member("b", 1, "n", corev1.PodRunning), member("c", 1, "n", corev1.PodRunning)},
			want:     schedv1alpha1.PodGroupStatus{Phase: running, Running: 3, ScheduleStartTime: minute(3)},
		},
		{
			name:     "finished keeps its start time and occupiedBy",
			previous: schedv1alpha1.PodGroupStatus{Phase: running, Running: 3, ScheduleStartTime: minute(3), OccupiedBy: "job-uid"},
			pods:     []corev1.Pod{member("a", 3, "n", corev1.PodSucceeded), member("b", 3, "n", corev1.PodSucceeded), member("c", 3, "n", corev1.PodSucceeded)},
			want:     schedv1alpha1.PodGroupStatus{Phase: finished, Succeeded: 3, ScheduleStartTime: minute(3), OccupiedBy: "job-uid"},
		},
		{
			name:     "a new attempt after failure takes a new start time",
			previous: schedv1alpha1.PodGroupStatus{Phase: failed, Failed: 1, ScheduleStartTime: minute(3)},
			pods:     []corev1.Pod{member("a2", 20, "", corev1.PodPending), member("b2", 21, "", corev1.PodPending), member("c2", 20, "", corev1.PodPending)},
			want:     schedv1alpha1.PodGroupStatus{Phase: pending, ScheduleStartTime: minute(20)},
		},
		{
			name:     "failed stays failed with its start time while pods are cleaned up",
			previous: schedv1alpha1.PodGroupStatus{Phase: failed, Failed: 1, Running: 2, ScheduleStartTime: minute(3)},
			pods:     []corev1.Pod{member("a", 3, "n", corev1.PodFailed)},
			want:     schedv1alpha1.PodGroupStatus{Phase: failed, Failed: 1, ScheduleStartTime: minute(3)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pg := &schedv1alpha1.PodGroup{Spec: schedv1alpha1.PodGroupSpec{MinMember: 3}, Status: tc.previous}
			if diff := cmp.Diff(tc.want, Status(pg, tc.pods)); diff != "" {
				t.Errorf("Status (-want,+got):\n%s", diff)
			}
		})
	}
}
