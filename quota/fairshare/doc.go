// Package fairshare is kubehtc's fair-share arithmetic, shared by the quota controller (quota/controller) and
// the scheduler (scheduler/internal/fairshare, scheduler/fairshare). It is pure: no client, no framework, no
// clock; callers pass Queue objects, pod requests and times in.
//
// Units. Usage is counted in core-equivalents: a pod is charged its dominant resource, the largest of
// request_r / coreEquivalent_r over the charged resources (Policy.CoreEquivalents), as in Dominant Resource
// Fairness; a GPU worth 8 cores makes a 1-GPU, 2-core pod cost 8. Capacity is charged the same way.
//
// Decay. Every accounting interval Δt, a queue's decayed usage U moves toward its current usage u:
// U ← β·U + (1−β)·u with β = 0.5^(Δt/h) (HTCondor's real user priority, h = half-life). Because
// β(a)·β(b) = β(a+b), decaying in many short steps gives the same result as one long step at constant u, so
// the controller and the scheduler (which projects the last status to "now" with the usage it sees live) agree.
//
// Targets. Each queue's share is its weight over the weights of it and its siblings, times its parent's
// share, so children's shares sum to their parent's. The capacity queues divide is the cluster's allocatable
// minus the requests of running pods outside any queue (web services). A queue's target is its share of its
// parent's target, raised to its guaranteed resources (others' targets shrink to compensate, never below
// their own guarantees), so targets of children again sum to their parent's. A queue that does not accept
// surplus is capped at its target; one that does may use what its siblings neither use nor hold back (a
// queue holds back 100−lendablePercent of its target while idle).
//
// Ranking. Slurm's Fair Tree: at each level, siblings are visited in descending level fair-share
// LF = S/U, S = weight / siblings' weights, U = priorityFactor·decayed usage / the same sum over siblings
// (LF = ∞ without usage), and users inside a leaf by ascending decayed usage. Visiting depth first gives one
// order of all (leaf, user) pairs; a queue that is ahead at some level puts all of its users ahead.
//
// Reclaim. A queue below its target may preempt pods of a queue above its target, only as long as neither
// crosses its target (see Tree.CanReclaim for why this cannot cycle).
package fairshare
