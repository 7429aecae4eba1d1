// Package gang is the Gang scheduler plugin: all-or-nothing scheduling of the pods of a PodGroup
// (scheduling.x-k8s.io/v1alpha1, the API that scheduler-plugins and Kubeflow's training operators create; pods
// join with label scheduling.x-k8s.io/pod-group).
//
// Why a gang never deadlocks here. Coscheduling plugins that let each member reserve a node on its own and then
// wait at Permit for the others deadlock when several gangs compete: each holds part of the cluster and waits
// for capacity that another waiting gang holds. This plugin decides a gang as a whole instead:
//
//  1. PreEnqueue keeps every member out of the scheduling queue until minMember pods exist.
//  2. In the PreFilter of the first member to reach a scheduling cycle, the plugin places the whole gang against
//     one consistent view — the cycle's snapshot, plus the placements already promised to other gangs — by
//     running the profile's own PreFilter and Filter plugins for each member on working copies of the nodes,
//     members added as they are placed. If fewer members fit than the gang still needs, nothing is placed or
//     held: every member fails with a message saying how many fit ("needs 64 pods (4 cpu), 41 fit").
//  3. If the gang fits, its placement becomes a reservation: each member is restricted to its node (a
//     PreFilterResult of one node), and the Filter of every other pod of the profile subtracts the reserved,
//     not yet assumed members from the nodes' free capacity. Reservations never overlap, so every promised
//     placement can complete at the same time: waiting members never wait for capacity someone else holds.
//  4. Members wait at Permit until minMember of the gang are assumed or bound, then all are allowed at once and
//     bind together. If any member fails (its node was taken by a pod of another profile, the node went away, or
//     the timeout expired), the whole gang is released: the placement is dropped and every waiting member is
//     rejected, to be retried together after backoff.
//
// Members are kept together in the scheduling queue by the QueueOrder plugin (same PodGroup, adjacent), which
// also orders by priority and fair share. The timeout is the PodGroup's scheduleTimeoutSeconds, else the
// plugin's defaultScheduleTimeoutSeconds; it bounds both how long a placement is held and how long members wait
// at Permit.
//
// A gang member never triggers preemption on its own (PostFilter returns UnschedulableAndUnresolvable for
// members): evicting pods for one member when the gang as a whole may still not fit would only destroy work.
// Gangs as victims are evicted whole by the PodGroup controller (internal/gangcontroller).
package gang
