// Package fairshare is the FairShare scheduler plugin: it enforces the queue tree's limits and reclaims
// guaranteed shares. (The order of the scheduling queue by fair-share rank is the QueueOrder plugin's, from
// the same shared state in scheduler/internal/fairshare.)
//
//   - PreFilter rejects a pod whose queue, or an ancestor, would exceed its limit (spec.limit, per resource)
//     or its cap (a queue that does not accept surplus stops at its target; every queue stops where its
//     siblings' use and hold-back begin). The reason names the queue, the resource and the numbers.
//   - PostFilter reclaims: when a pod of a queue below its target does not fit, it may preempt pods of queues
//     above their targets, the most over first, whole gangs at a time (members share podgroup.Key), never
//     taking the preemptor above its target nor a victim's queue below its own. Why this cannot cycle is
//     written at fairshare.Tree.CanReclaim. Pods outside any queue (web services) are never victims.
//   - Reserve/Unreserve count a pod between placement and binding, so that limits hold within a burst.
//
// Pods of namespaces without the kubehtc.io/queue label are outside fair share: every extension point
// skips them.
package fairshare
