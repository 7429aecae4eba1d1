package translate

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// Reasons a GridJob FAILED or was KILLED (GridJobStatus.FailureReason).
const (
	ReasonNonZeroExit      = "NonZeroExitCode"
	ReasonOOMKilled        = "OOMKilled"
	ReasonDeadlineExceeded = "DeadlineExceeded"
	ReasonImageFailure     = "ImageFailure"
	ReasonContainerConfig  = "ContainerConfigError"
	ReasonPodLost          = "PodLost"
	ReasonCancelled        = "Cancelled"
)

// imageFailures are container waiting reasons after which the job cannot start.
var imageFailures = map[string]string{
	"ErrImagePull":               ReasonImageFailure,
	"ImagePullBackOff":           ReasonImageFailure,
	"InvalidImageName":           ReasonImageFailure,
	"ErrImageNeverPull":          ReasonImageFailure,
	"CreateContainerConfigError": ReasonContainerConfig,
	"CreateContainerError":       ReasonContainerConfig,
}

// Observation is what a Pod says about its GridJob.
type Observation struct {
	State    kubehtcv1alpha1.GridJobState
	Reason   string
	Message  string
	ExitCode *int32
	Node     string
	Start    *metav1.Time
	End      *metav1.Time
}

// StateFromPod maps a GridJob's Pod to an ARC REST state (../shared/reference/arc-rest.md §1.6): Pending →
// QUEUING, Running → RUNNING, Succeeded → FINISHED, Failed → FAILED with OOMKilled, DeadlineExceeded or
// NonZeroExitCode, image and container-config failures of a Pending Pod → FAILED, a Pod being deleted →
// KILLING.
func StateFromPod(pod *corev1.Pod) Observation {
	o := Observation{Node: pod.Spec.NodeName}
	if pod.Status.StartTime != nil && pod.Status.Phase != corev1.PodPending {
		o.Start = pod.Status.StartTime.DeepCopy()
	}
	term := terminated(pod)
	if term != nil {
		o.ExitCode = ptr.To(term.ExitCode)
		if !term.FinishedAt.IsZero() {
			o.End = term.FinishedAt.DeepCopy()
		}
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		o.State = kubehtcv1alpha1.StateFinished
		if o.ExitCode == nil {
			o.ExitCode = ptr.To[int32](0)
		}
		return o
	case corev1.PodFailed:
		o.State = kubehtcv1alpha1.StateFailed
		switch {
		case pod.Status.Reason == "DeadlineExceeded":
			o.Reason, o.Message = ReasonDeadlineExceeded, "the job exceeded its wall time"
		case term != nil && term.Reason == "OOMKilled":
			o.Reason, o.Message = ReasonOOMKilled, "the job exceeded its memory"
		case term != nil && term.ExitCode != 0:
			o.Reason, o.Message = ReasonNonZeroExit, "the job exited with a non-zero code"
		default:
			o.Reason, o.Message = pod.Status.Reason, pod.Status.Message
			if o.Reason == "" {
				o.Reason = "PodFailed"
			}
		}
		return o
	}
	if pod.DeletionTimestamp != nil {
		o.State = kubehtcv1alpha1.StateKilling
		return o
	}
	switch pod.Status.Phase {
	case corev1.PodRunning:
		o.State = kubehtcv1alpha1.StateRunning
	case corev1.PodPending, "":
		o.State = kubehtcv1alpha1.StateQueuing
		for _, cs := range pod.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				if reason, ok := imageFailures[w.Reason]; ok {
					o.State, o.Reason, o.Message = kubehtcv1alpha1.StateFailed, reason, w.Reason+": "+w.Message
				}
			}
		}
	default:
		o.State = kubehtcv1alpha1.StateOther
	}
	return o
}

func terminated(pod *corev1.Pod) *corev1.ContainerStateTerminated {
	for i := range pod.Status.ContainerStatuses {
		cs := &pod.Status.ContainerStatuses[i]
		if cs.Name == ContainerName || len(pod.Status.ContainerStatuses) == 1 {
			if cs.State.Terminated != nil {
				return cs.State.Terminated
			}
			return cs.LastTerminationState.Terminated
		}
	}
	return nil
}

// stateRank orders the states a job moves through, so that a controller never moves a job backwards.
var stateRank = map[kubehtcv1alpha1.GridJobState]int{
	kubehtcv1alpha1.StateAccepting: 1, kubehtcv1alpha1.StateAccepted: 2, kubehtcv1alpha1.StatePreparing: 3,
	kubehtcv1alpha1.StatePrepared: 4, kubehtcv1alpha1.StateSubmitting: 5, kubehtcv1alpha1.StateQueuing: 6,
	kubehtcv1alpha1.StateHeld: 6, kubehtcv1alpha1.StateRunning: 7, kubehtcv1alpha1.StateOther: 7,
	kubehtcv1alpha1.StateExitingLRMS: 8, kubehtcv1alpha1.StateExecuted: 9, kubehtcv1alpha1.StateFinishing: 10,
	kubehtcv1alpha1.StateKilling: 11, kubehtcv1alpha1.StateFinished: 12, kubehtcv1alpha1.StateFailed: 12,
	kubehtcv1alpha1.StateKilled: 12, kubehtcv1alpha1.StateWiped: 13,
}

// StateRank orders states along a job's life: a later state has a higher rank; the terminal states share
// one rank (WIPED comes after them). Unknown states rank 0.
func StateRank(s kubehtcv1alpha1.GridJobState) int { return stateRank[s] }
