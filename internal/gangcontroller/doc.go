// Package gangcontroller keeps the status of scheduling.x-k8s.io/v1alpha1 PodGroups (the gang API of
// scheduler-plugins and Kubeflow's training operators) true to their member pods, and completes the eviction
// of a gang when the scheduler preempts one of its members, so that no gang is ever left partly preempted.
// It runs in kubehtc-controller (internal/controllermanager) and in the local cluster.
//
// A pod is a member of PodGroup <name> when it carries the label scheduling.x-k8s.io/pod-group: <name> and
// lives in the PodGroup's namespace.
//
// # Counts
//
// A member is leaving when it has a deletion timestamp and has not finished (phase neither Succeeded nor
// Failed): it is going away and counts as neither running nor scheduled.
//
//	running    members in phase Running, not leaving                  (status.running)
//	succeeded  members in phase Succeeded                             (status.succeeded)
//	failed     members in phase Failed                                (status.failed)
//	scheduled  members bound to a node, not leaving, not Failed
//	viable     members not leaving and not Failed (they can still succeed)
//
// # Phase
//
// With m = spec.minMember (at least 1), the first matching row wins:
//
//	Finished    succeeded ≥ m
//	Failed      failed > 0 and viable < m: fewer than m members can still succeed
//	(kept)      the previous phase was Finished or Failed and no member is pending or running:
//	            a finished attempt stays finished when its pods are cleaned up
//	Running     running + succeeded ≥ m (members that finished early keep the gang Running)
//	Scheduling  scheduled ≥ m: the gang is bound, not yet running
//	Pending     otherwise: fewer than m members are bound
//
// This follows the phase documentation of the scheduler-plugins types. Unknown (part of the gang bound, the
// rest unschedulable) is not used: kubehtc's gang plugin never binds part of a gang, and a gang that lost
// members is Pending until it has m bound members again.
//
// status.scheduleStartTime is when the current attempt began: the creation time of its oldest pending or
// running member, set once and then kept. A new attempt begins when the phase leaves Finished or Failed
// (new members were created); scheduleStartTime is then taken again from the new attempt's members.
//
// Status is written only when it changes, with a merge patch of the status subresource carrying the
// resourceVersion it was computed from. Each phase change is recorded as an Event on the PodGroup (Warning
// for Failed, Normal otherwise), and the gauge kubehtc_podgroups{phase} counts PodGroups by phase.
//
// # Gang eviction
//
// kube-scheduler's preemption marks a victim with the pod condition DisruptionTarget=True, reason
// PreemptionByScheduler, and then deletes it. When a member of a gang is marked so (seen on the live pod or on
// its final state when it is deleted), the controller evicts the rest of the gang: every other member that
// was bound no later than the victim was marked (the PodScheduled condition's time), has not finished and is
// not already being deleted gets the same condition (message "gang <name>: member <victim> was preempted")
// and is then deleted; a Warning Event on the PodGroup names the victim and the members evicted with it.
// Members bound after the preemption (a new attempt) are left alone, and retries only act on members not yet
// being deleted, so the completion happens once.
package gangcontroller
