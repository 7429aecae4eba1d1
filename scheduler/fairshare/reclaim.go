package fairshare

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

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
	set := pl.memo.get(all, tree, pl.units)
	var best *plan
	for _, ni := range candidates {
		p := pl.planNode(ctx, cs, pod, s, ni, tree, set.byNode[ni.Node().Name])
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

// units groups the pods of queues over their targets into preemption units (the preemptor's own queue's
// among them: planNode skips those).
func (pl *FairShare) units(all []fwk.NodeInfo, tree *fairshare.Tree) map[string]*unit {
	units := map[string]*unit{}
	terminating := map[string]bool{}
	for _, ni := range all {
		for _, pi := range ni.GetPods() {
			p := pi.GetPod()
			leaf := pl.view.LeafOf(p.Namespace)
			n := tree.Node(leaf)
			if leaf == "" || n == nil || !n.IsLeaf() || n.Parent == nil {
				continue // outside fair share (web services), or unknown
			}
			f := pl.memo.factsLocked(p)
			key, req := f.key, f.requests
			if p.DeletionTimestamp != nil {
				terminating[key] = true
			}
			u := units[key]
			if u == nil {
				u = &unit{key: key, leaf: leaf, priority: corev1helpers.PodPriority(p), overage: tree.Overage(leaf)}
				units[key] = u
			}
			c := tree.Policy.Charge(req)
			u.pods = append(u.pods, p)
			u.users = append(u.users, f.user)
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

// planNode picks victims among here (the units with a member on ni, in reclaim order) until the pod fits
// there, or returns nil. It restores tree.
func (pl *FairShare) planNode(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, s *preFilterState, ni fwk.NodeInfo,
	tree *fairshare.Tree, here []*unit) *plan {
	// Without a unit reclaim may take at all (other queues', and allowed before any is taken), the node is
	// no candidate; most nodes are not, and this spares them the copy below.
	if !slices.ContainsFunc(here, func(u *unit) bool {
		return u.leaf != s.leaf && int(pl.args.MaxReclaimVictims) >= len(u.pods) && tree.CanReclaim(s.leaf, u.leaf, s.charge, u.charge)
	}) {
		return nil
	}
	node := ni.Node().Name
	logger := klog.FromContext(ctx)
	state := cs.Clone()
	info := ni.Snapshot()
	p := &plan{node: node}
	defer func() {
		for _, u := range p.victims {
			for i := range u.pods {
				tree.AddUsage(u.leaf, u.users[i], u.requests[i], u.charges[i], 0)
			}
		}
	}()
	for _, u := range here {
		if u.leaf == s.leaf || p.pods+len(u.pods) > int(pl.args.MaxReclaimVictims) || !tree.CanReclaim(s.leaf, u.leaf, s.charge, u.charge) {
			continue
		}
		for i, v := range u.pods {
			tree.SubtractRequests(u.leaf, u.users[i], u.requests[i], u.charges[i])
			if v.Spec.NodeName != node {
				continue
			}
			if err := info.RemovePod(logger, v); err != nil {
				logger.V(4).Info("FairShare reclaim: removing pod from node copy", "pod", klog.KObj(v), "err", err)
				continue
			}
			vi, err := pl.handle.SnapshotSharedLister().NodeInfos().Get(node)
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

// unitSet is reclaim's preemption units and, per node, those with a member there in reclaim order: the most
// over their target first, then the lowest priority, then the most recently started.
type unitSet struct {
	units  map[string]*unit
	byNode map[string][]*unit
}

func newUnitSet(units map[string]*unit) *unitSet {
	set := &unitSet{units: units, byNode: map[string][]*unit{}}
	for _, u := range units {
		seen := map[string]bool{}
		for _, p := range u.pods {
			if n := p.Spec.NodeName; !seen[n] {
				seen[n] = true
				set.byNode[n] = append(set.byNode[n], u)
			}
		}
	}
	for _, here := range set.byNode {
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
	}
	return set
}

// unitsMemo keeps the preemption units of the last reclaim while the cluster is the same: no pod added,
// removed or updated on any node (NodeInfo generations), and the same usage and targets in the queue tree.
// Every pending pod of a queue below its target runs reclaim after failing Filter, and all of them see the
// same cluster until something binds or ends; without the memo each one grouped every running pod again
// (`kubehtc sim` fast mode on site-day: 80 % of the CPU, in PodRequests).
type unitsMemo struct {
	mu   sync.Mutex
	key  memoKey
	tree []float64
	set  *unitSet
	// facts are what units needs of each pod, kept while the pod object is the same (PodRequests was the
	// bulk of a rebuild); stamp marks those seen by the latest build, the others are dropped after it.
	facts map[types.UID]*podFacts
	stamp uint64
}

type podFacts struct {
	pod       *v1.Pod
	key, user string
	requests  v1.ResourceList
	stamp     uint64
}

// factsLocked returns p's facts; get's caller (a build) holds mu.
func (m *unitsMemo) factsLocked(p *v1.Pod) *podFacts {
	f := m.facts[p.UID]
	if f == nil || f.pod != p {
		key, ok := podgroup.Key(p)
		if !ok {
			key = "pod/" + string(p.UID)
		}
		f = &podFacts{pod: p, key: key, user: fairshare.UserOf(p), requests: resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})}
		if m.facts == nil {
			m.facts = map[types.UID]*podFacts{}
		}
		m.facts[p.UID] = f
	}
	f.stamp = m.stamp
	return f
}

type memoKey struct {
	nodes          int
	genSum, genMax int64
}

// get returns the memoized units for all and tree, or computes them with build.
func (m *unitsMemo) get(all []fwk.NodeInfo, tree *fairshare.Tree, build func([]fwk.NodeInfo, *fairshare.Tree) map[string]*unit) *unitSet {
	key := memoKey{nodes: len(all)}
	for _, ni := range all {
		g := ni.GetGeneration()
		key.genSum += g
		key.genMax = max(key.genMax, g)
	}
	nodes := tree.Nodes()
	state := make([]float64, 0, 2*len(nodes))
	for _, n := range nodes {
		state = append(state, n.Usage, n.Target)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.set != nil && key == m.key && slices.Equal(state, m.tree) {
		return m.set
	}
	m.stamp++
	m.key, m.tree, m.set = key, state, newUnitSet(build(all, tree))
	for uid, f := range m.facts {
		if f.stamp != m.stamp {
			delete(m.facts, uid)
		}
	}
	return m.set
}
