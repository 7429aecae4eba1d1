package translate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

func TestStateFromPod(t *testing.T) {
	now := metav1.Now()
	exited := func(code int32, reason string) []corev1.ContainerStatus {
		return []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}}}
	}
	waiting := func(reason string) []corev1.ContainerStatus {
		return []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "m"}}}}
	}
	cases := []struct {
		name string
		pod  corev1.Pod
		want Observation
	}{
		{name: "unscheduled", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}}, want: Observation{State: kubehtcv1alpha1.StateQueuing}},
		{name: "pulling", pod: corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waiting("ContainerCreating")}},
			want: Observation{State: kubehtcv1alpha1.StateQueuing, Node: "n1"}},
		{name: "image pull failure", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waiting("ImagePullBackOff")}},
			want: Observation{State: kubehtcv1alpha1.StateFailed, Reason: ReasonImageFailure, Message: "ImagePullBackOff: m"}},
		{name: "running", pod: corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &now}},
			want: Observation{State: kubehtcv1alpha1.StateRunning, Node: "n1", Start: &now}},
		{name: "succeeded", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: exited(0, "Completed")}},
			want: Observation{State: kubehtcv1alpha1.StateFinished, ExitCode: ptr.To[int32](0)}},
		{name: "non-zero exit", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: exited(3, "Error")}},
			want: Observation{State: kubehtcv1alpha1.StateFailed, ExitCode: ptr.To[int32](3), Reason: ReasonNonZeroExit, Message: "the job exited with a non-zero code"}},
		{name: "OOM", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: exited(137, "OOMKilled")}},
			want: Observation{State: kubehtcv1alpha1.StateFailed, ExitCode: ptr.To[int32](137), Reason: ReasonOOMKilled, Message: "the job exceeded its memory"}},
		{name: "deadline", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "DeadlineExceeded"}},
			want: Observation{State: kubehtcv1alpha1.StateFailed, Reason: ReasonDeadlineExceeded, Message: "the job exceeded its wall time"}},
		{name: "being deleted", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
			want: Observation{State: kubehtcv1alpha1.StateKilling}},
		{name: "unknown phase", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodUnknown}}, want: Observation{State: kubehtcv1alpha1.StateOther}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, StateFromPod(&tc.pod)); diff != "" {
				t.Errorf("observation (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestStateRankOrdersALife(t *testing.T) {
	life := []kubehtcv1alpha1.GridJobState{kubehtcv1alpha1.StateAccepting, kubehtcv1alpha1.StateSubmitting, kubehtcv1alpha1.StateQueuing,
		kubehtcv1alpha1.StateRunning, kubehtcv1alpha1.StateKilling, kubehtcv1alpha1.StateKilled}
	for i := 1; i < len(life); i++ {
		if StateRank(life[i-1]) >= StateRank(life[i]) {
			t.Errorf("rank(%s)=%d is not below rank(%s)=%d", life[i-1], StateRank(life[i-1]), life[i], StateRank(life[i]))
		}
	}
}
