package gangcontroller

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"
)

// Counts are the member counts a PodGroup's phase is computed from (see the package doc).
type Counts struct {
	// Running members are in phase Running and not leaving.
	Running int32
	// Succeeded and Failed members are in those phases.
	Succeeded int32
	Failed    int32
	// Scheduled members are bound to a node, not leaving and not Failed.
	Scheduled int32
	// Viable members are not leaving and not Failed: they can still succeed.
	Viable int32
}

// Active returns how many members are pending or running (viable and not yet succeeded).
func (c Counts) Active() int32 { return c.Viable - c.Succeeded }

// CountMembers counts the member pods of one PodGroup.
func CountMembers(pods []corev1.Pod) Counts {
	var c Counts
	for i := range pods {
		p := &pods[i]
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			c.Succeeded++
			c.Viable++
			if p.Spec.NodeName != "" {
				c.Scheduled++
			}
			continue
		case corev1.PodFailed:
			c.Failed++
			continue
		}
		if p.DeletionTimestamp != nil {
			continue // leaving
		}
		c.Viable++
		if p.Spec.NodeName != "" {
			c.Scheduled++
		}
		if p.Status.Phase == corev1.PodRunning {
			c.Running++
		}
	}
	return c
}

// Phase returns the phase of a PodGroup with minMember whose members count c and whose status said previous
// (the table of the package doc).
func Phase(minMember int32, c Counts, previous schedv1alpha1.PodGroupPhase) schedv1alpha1.PodGroupPhase {
	m := max(minMember, 1)
	switch {
	case c.Succeeded >= m:
		return schedv1alpha1.PodGroupFinished
	case c.Failed > 0 && c.Viable < m:
		return schedv1alpha1.PodGroupFailed
	case terminal(previous) && c.Active() == 0:
		return previous
	case c.Running+c.Succeeded >= m:
		return schedv1alpha1.PodGroupRunning
	case c.Scheduled >= m:
		return schedv1alpha1.PodGroupScheduling
	default:
		return schedv1alpha1.PodGroupPending
	}
}

func terminal(p schedv1alpha1.PodGroupPhase) bool {
	return p == schedv1alpha1.PodGroupFinished || p == schedv1alpha1.PodGroupFailed
}

// Status returns pg's status as its member pods say: counts, phase and scheduleStartTime. Fields this
// controller does not own (occupiedBy) are kept.
func Status(pg *schedv1alpha1.PodGroup, pods []corev1.Pod) schedv1alpha1.PodGroupStatus {
	c := CountMembers(pods)
	st := *pg.Status.DeepCopy()
	st.Running, st.Succeeded, st.Failed = c.Running, c.Succeeded, c.Failed
	st.Phase = Phase(pg.Spec.MinMember, c, pg.Status.Phase)
	if terminal(pg.Status.Phase) && !terminal(st.Phase) {
		st.ScheduleStartTime = metav1.Time{} // a new attempt
	}
	if st.ScheduleStartTime.IsZero() {
		st.ScheduleStartTime = attemptStart(pods)
	}
	return st
}

// attemptStart returns the creation time of the oldest pending or running member (zero if there is none).
func attemptStart(pods []corev1.Pod) metav1.Time {
	var start metav1.Time
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if start.IsZero() || p.CreationTimestamp.Before(&start) {
			start = p.CreationTimestamp
		}
	}
	return start
}
