// Package backfill is the Backfill scheduler plugin: reservations for big jobs and walltime-driven backfill
// around them, so that a gang or a big pod starts even when small pods keep taking each resource as it frees.
//
// Without it, a gang of 2 × 8 GPUs on a pool kept busy by 1-GPU pods never finds 16 GPUs free at once: every
// GPU that frees is taken by the next small pod before the rest free up. Slurm's answer is backfill, and this
// plugin follows it:
//
//  1. Every pod has a walltime: spec.activeDeadlineSeconds, else the annotation kubehtc.io/walltime (a Go
//     duration), else the first matching entry of the args' defaultWalltimes; a running pod is expected to end
//     at its start plus its walltime. Pods without a walltime never end, as far as reservations know.
//  2. When a big job — a gang (PodGroup of more than one pod) or a pod requesting at least one of the args'
//     bigPodRequests — fails to schedule, PostFilter computes the earliest time its members fit, from the
//     expected ends of the running pods on the nodes it may use, and the nodes (scheduler/internal/reservation).
//     The job holds that reservation across cycles; at most maxReservations jobs hold one, and a job that ranks
//     before the worst-ranked holder in the queue's order (priority, then fair-share rank — QueueOrder's order)
//     takes its place. The reservation is recomputed each time the job fails again (pods ended early, a node
//     went away), and at once when one of its nodes leaves; it is released when the job starts or is deleted.
//  3. Filter lets another pod onto a reserved node only if it will end before the reservation starts
//     (backfill: its walltime is known and now + walltime ≤ start) or if the node keeps room for the reserved
//     capacity at the start even with the pod still running. So a pod without a walltime never backfills into
//     reserved capacity, and the reserved nodes drain toward the start.
//
// Gangs: a reservation is the gang's future placement. The Gang plugin still places the gang as a whole when
// it fits; until then this plugin keeps other pods off the capacity the gang will need.
//
// Visible: a PodScheduled-style condition kubehtc.io/Reserved on the pod and an Event "reserved nodes n1,n2
// from 14:32 (in 42m)" when a reservation is made or moves; metrics kubehtc_scheduler_reservations (gauge),
// kubehtc_scheduler_reservations_created_total and kubehtc_scheduler_backfilled_pods_total.
//
// The clock is the handle's (podgroup.Clock): virtual time in simulations (scheduler/simframework), so the
// same code runs in `kubehtc sim --mode fast`.
package backfill
