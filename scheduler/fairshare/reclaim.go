package fairshare

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/kubehtc/kubehtc/quota/fairshare"
	"github.com/kubehtc/kubehtc/scheduler/internal/podgroup"
)

// unit is what reclaim preempts at once: a whole gang (all members of one PodGroup, on any node) or one pod.
type unit struct {
	key      string
	leaf     string
	users    []string
	pods     []*v1.Pod
	requests []v1.ResourceList
	charges  []float64
	charge   float64
	priority int32
	newest   metav1.Time
	overage  float64
}

// plan is the victims chosen on one node.
type plan struct {
	node    string
	victims []*unit
	pods    int
	charge  float64
}

// PostFilter reclaims: see the package doc and fairshare.Tree.CanReclaim.
func (pl *FairShare) PostFilter(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, m fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	res, st := pl.reclaim(ctx, cs, pod, m)
	if res == nil && !st.IsSuccess() && pl.staleNomination(pod) {
		// A pod that reclaim cannot help (any more) gives up the node it was nominated for, as DefaultPreemption
		// does when it finds no victims. A stale nomination keeps the pod's requests reserved on that node
		// against every pod of equal or lower priority; a pod nominated by an earlier reclaim and now refused
		// by its queue's cap would otherwise hold freed cores idle while others wait (seen in
		// `kubehtc sim --mode cluster` replays: half the cluster idle for minutes).
		klog.FromContext(ctx).V(3).Info("FairShare clears a stale nomination", "pod", klog.KObj(pod), "node", pod.Status.NominatedNodeName)
		res = &fwk.PostFilterResult{NominatingInfo: &fwk.NominatingInfo{NominatingMode: fwk.ModeOverride}}
	}
	return res, st
}

// staleNomination reports whether pod, a pod of a queue, is nominated for a node where no pod is terminating:
// the victims of a preemption for it (by reclaim or by priority) are gone, or there were none.
func (pl *FairShare) staleNomination(pod *v1.Pod) bool {
	nn := pod.Status.NominatedNodeName
	if nn == "" || pl.view.LeafOf(pod.Namespace) == "" {
		return false
	}
	ni, err := pl.handle.SnapshotSharedLister().NodeInfos().Get(nn)
	if err != nil {
		return true // the node is gone
	}
	for _, pi := range ni.GetPods() {
		if pi.GetPod().DeletionTimestamp != nil {
			return false
		}
	}
	return true
}

// reclaim is PostFilter before stale nominations are cleared.
func (pl *FairShare) reclaim(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, m fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	if !*pl.args.Reclaim {
		return nil, fwk.NewStatus(fwk.Unschedulable, ReasonNoReclaim+": reclaim is off")
	}
	s, err := readState(cs)
	if err != nil {
		// PreFilter skipped the pod: it is outside fair share.
		return nil, fwk.NewStatus(fwk.Unschedulable)
	}
	logger := klog.FromContext(ctx)
	lister := pl.handle.SnapshotSharedLister().NodeInfos()
	// Reclaimed pods still terminating on the nominated node will free it: wait rather than preempt again.
	if nn := pod.Status.NominatedNodeName; nn != "" {
		if ni, err := lister.Get(nn); err == nil && pl.terminatingInQueues(ni) {
			return nil, fwk.NewStatus(fwk.Unschedulable, ReasonWaitingForVictims)
		}
	}
	tree, err := pl.view.Fresh()
	if err != nil {
		return nil, fwk.AsStatus(fmt.Errorf("fair-share state: %w", err))
	}
	for _, x := range tree.Node(s.leaf).Path() {
		if x.Usage+s.charge > x.Target+1e-9 {
			return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: queue %q would be above its target (%.3g + %.3g > %.3g core-equivalents); reclaim only restores targets",
				ReasonNoReclaim, x.Name, x.Usage, s.charge, x.Target))
		}
	}
	candidates, err := m.NodesForStatusCode(lister, fwk.Unschedulable)
	if err != nil {
		return nil, fwk.AsStatus(err)
	}
	if len(candidates) == 0 {
		// Every node rejected the pod for reasons preemption cannot change (e.g. a queue limit).
		return nil, fwk.NewStatus(fwk.Unschedulable)
	}
	all, err := lister.List()
	if err != nil {
		return nil, fwk.AsStatus(err)
	}
	units := pl.units(all, tree, s.leaf)
	var best *plan
	for _, ni := range candidates {
		p := pl.planNode(ctx, cs, pod, s, ni, tree, units)
		if p == nil {
			continue
		}
		if best == nil || p.pods < best.pods || (p.pods == best.pods && p.charge < best.charge) {
			best = p
		}
	}
	if best == nil {
		return nil, fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: no node where preempting pods of queues over their targets (whole gangs, at most %d pods) makes room without taking them below their targets",
			ReasonNoReclaim, pl.args.MaxReclaimVictims))
	}
	for _, u := range best.victims {
		for _, v := range u.pods {
			if err := pl.evict(ctx, v, pod, s.leaf, u.leaf); err != nil {
				return nil, fwk.AsStatus(err)
			}
		}
		reclaimVictims.WithLabelValues(u.leaf).Add(float64(len(u.pods)))
	}
	logger.V(2).Info("FairShare reclaim", "pod", klog.KObj(pod), "queue", s.leaf, "node", best.node, "victims", best.pods, "chargeFreed", best.charge)
	return &fwk.PostFilterResult{NominatingInfo: &fwk.NominatingInfo{NominatedNodeName: best.node, NominatingMode: fwk.ModeOverride}},
		fwk.NewStatus(fwk.Success)
}

// terminatingInQueues reports whether a pod of a queue is being deleted on the node.
func (pl *FairShare) terminatingInQueues(ni fwk.NodeInfo) bool {
	for _, pi := range ni.GetPods() {
		p := pi.GetPod()
		if p.DeletionTimestamp != nil && pl.view.LeafOf(p.Namespace) != "" {
			return true
		}
	}
	return false
}

// units groups the pods of queues over their targets (other than the preemptor's) into preemption units,
// most over first, then lowest priority, then most recently started.
func (pl *FairShare) units(all []fwk.NodeInfo, tree *fairshare.Tree, own string) map[string]*unit {
	units := map[string]*unit{}
	terminating := map[string]bool{}
	for _, ni := range all {
		for _, pi := range ni.GetPods() {
			p := pi.GetPod()
			leaf := pl.view.LeafOf(p.Namespace)
			n := tree.Node(leaf)
			if leaf == "" || leaf == own || n == nil || !n.IsLeaf() || n.Parent == nil {
				continue // outside fair share (web services), the preemptor's own queue, or unknown
			}
			key, ok := podgroup.Key(p)
			if !ok {
				key = "pod/" + string(p.UID)
			}
			if p.DeletionTimestamp != nil {
				terminating[key] = true
			}
			u := units[key]
			if u == nil {
				u = &unit{key: key, leaf: leaf, priority: corev1helpers.PodPriority(p), overage: tree.Overage(leaf)}
				units[key] = u
			}
			req := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
			c := tree.Policy.Charge(req)
			u.pods = append(u.pods, p)
			u.users = append(u.users, fairshare.UserOf(p))
			u.requests = append(u.requests, req)
			u.charges = append(u.charges, c)
			u.charge += c
			u.priority = min(u.priority, corev1helpers.PodPriority(p))
			if st := p.Status.StartTime; st != nil && st.After(u.newest.Time) {
				u.newest = *st
			}
		}
	}
	for k, u := range units {
		if terminating[k] || u.overage <= 0 {
			delete(units, k)
		}
	}
	return units
}

// planNode picks victims with a member on ni until the pod fits there, or returns nil. It restores tree.
func (pl *FairShare) planNode(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, s *preFilterState, ni fwk.NodeInfo,
	tree *fairshare.Tree, units map[string]*unit) *plan {
	onNode := map[types.UID]bool{}
	var here []*unit
	seen := map[string]bool{}
	for _, pi := range ni.GetPods() {
		p := pi.GetPod()
		onNode[p.UID] = true
		key, ok := podgroup.Key(p)
		if !ok {
			key = "pod/" + string(p.UID)
		}
		if u := units[key]; u != nil && !seen[key] {
			seen[key] = true
			here = append(here, u)
		}
	}
	if len(here) == 0 {
		return nil
	}
	slices.SortFunc(here, func(a, b *unit) int {
		if c := cmp.Compare(b.overage, a.overage); c != 0 {
			return c
		}
		if c := cmp.Compare(a.priority, b.priority); c != 0 {
			return c
		}
		if c := b.newest.Compare(a.newest.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	logger := klog.FromContext(ctx)
	state := cs.Clone()
	info := ni.Snapshot()
	p := &plan{node: ni.Node().Name}
	defer func() {
		for _, u := range p.victims {
			for i := range u.pods {
				tree.AddUsage(u.leaf, u.users[i], u.requests[i], u.charges[i], 0)
			}
		}
	}()
	for _, u := range here {
		if p.pods+len(u.pods) > int(pl.args.MaxReclaimVictims) || !tree.CanReclaim(s.leaf, u.leaf, s.charge, u.charge) {
			continue
		}
		for i, v := range u.pods {
			tree.SubtractRequests(u.leaf, u.users[i], u.requests[i], u.charges[i])
			if !onNode[v.UID] {
				continue
			}
			if err := info.RemovePod(logger, v); err != nil {
				logger.V(4).Info("FairShare reclaim: removing pod from node copy", "pod", klog.KObj(v), "err", err)
				continue
			}
			vi, err := pl.handle.SnapshotSharedLister().NodeInfos().Get(ni.Node().Name)
			if err == nil {
				for _, pi := range vi.GetPods() {
					if pi.GetPod().UID == v.UID {
						pl.handle.RunPreFilterExtensionRemovePod(ctx, state, pod, pi, info)
					}
				}
			}
		}
		p.victims = append(p.victims, u)
		p.pods += len(u.pods)
		p.charge += u.charge
		if pl.handle.RunFilterPluginsWithNominatedPods(ctx, state, pod, info).IsSuccess() {
			return p
		}
	}
	return nil
}

// evict marks the victim's disruption and deletes it.
func (pl *FairShare) evict(ctx context.Context, victim, preemptor *v1.Pod, queue, victimQueue string) error {
	msg := fmt.Sprintf("reclaimed by queue %s (below its target) for pod %s/%s: queue %s is above its target", queue, preemptor.Namespace, preemptor.Name, victimQueue)
	pl.handle.EventRecorder().Eventf(victim, preemptor, v1.EventTypeNormal, "Preempted", "Reclaiming", msg)
	cs := pl.handle.ClientSet()
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":"True","reason":"PreemptionByScheduler","message":%q,"lastTransitionTime":%q}]}}`,
		v1.DisruptionTarget, "kubehtc-scheduler: "+msg, metav1.Now().UTC().Format("2006-01-02T15:04:05Z"))
	if _, err := cs.CoreV1().Pods(victim.Namespace).Patch(ctx, victim.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		klog.FromContext(ctx).V(2).Info("FairShare reclaim: marking disruption", "pod", klog.KObj(victim), "err", err)
	}
	err := cs.CoreV1().Pods(victim.Namespace).Delete(ctx, victim.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(victim.UID))})
	if err != nil {
		return fmt.Errorf("preempting %s/%s: %w", victim.Namespace, victim.Name, err)
	}
	return nil
}
