package gang

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	"github.com/kubehtc/kubehtc/scheduler/internal/podgroup"
)

// planning marks a CycleState built by place.
type planning struct{}

func (planning) Clone() fwk.StateData { return planning{} }

// filterState is Filter's view of the reservations, copied in PreFilter so that Filter (run on many nodes in
// parallel) takes no lock. It is read-only after PreFilter.
type filterState struct {
	uid      types.UID
	req      request
	reserved map[string]request // node → sum of reservations other than the pod's own
}

func (s *filterState) Clone() fwk.StateData { return s }

// PreFilter places the pod's gang as a whole, or restricts a placed member to its node. For a pod outside any
// gang it only prepares Filter, and skips it when no capacity is reserved.
func (pl *Gang) PreFilter(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	if _, err := cs.Read(planningKey); err == nil {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	key, isMember := podgroup.Key(pod)
	if !isMember {
		return nil, pl.prepareFilter(cs, pod)
	}
	pg := pl.store.Get(key)
	if pg == nil {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: %s", ReasonPodGroupNotFound, key))
	}
	now := pl.now()

	pl.mu.Lock()
	pl.expireLocked(ctx, now)
	g := pl.gangLocked(key)
	if node, ok := g.plan[pod.UID]; ok {
		pl.mu.Unlock()
		if s := pl.prepareFilter(cs, pod); !s.IsSuccess() && !s.IsSkip() {
			return nil, s
		}
		return &fwk.PreFilterResult{NodeNames: sets.New(node)}, nil
	}
	members := pl.store.Members(key)
	done := pl.quorumLocked(g, members)
	need := int(minMember(pg)) - done - len(g.plan)
	if need <= 0 {
		// The gang has (or is about to have) minMember: this pod is an extra member, scheduled like any pod.
		pl.mu.Unlock()
		return nil, pl.prepareFilter(cs, pod)
	}
	gen := snapshotGeneration(pl.handle) + pl.releases
	if g.failure != "" && g.failedGeneration == gen {
		msg := g.failure
		pl.mu.Unlock()
		return nil, fwk.NewStatus(fwk.Unschedulable, msg)
	}
	pending := make([]*v1.Pod, 0, len(members))
	for _, m := range members {
		if _, assumed := g.assumed[m.UID]; m.Spec.NodeName == "" && !assumed {
			pending = append(pending, m)
		}
	}
	plan, msg := pl.place(ctx, key, pending, need, pg)
	if plan == nil {
		g.failure, g.failedGeneration = msg, gen
		pl.mu.Unlock()
		pl.recordFailure(ctx, key, pg, msg)
		return nil, fwk.NewStatus(fwk.Unschedulable, msg)
	}
	g.failure = ""
	g.plan = plan
	g.deadline = now.Add(pl.timeout(pg))
	byUID := make(map[types.UID]*v1.Pod, len(pending))
	for _, m := range pending {
		byUID[m.UID] = m
	}
	toActivate := map[string]*v1.Pod{}
	for uid, node := range plan {
		m := byUID[uid]
		placed := m.DeepCopy()
		placed.Spec.NodeName = node
		if pl.reserved[node] == nil {
			pl.reserved[node] = map[types.UID]reservation{}
		}
		pl.reserved[node][uid] = reservation{gang: key, pod: placed, req: podRequest(m)}
		if uid != pod.UID {
			toActivate[m.Namespace+"/"+m.Name] = m
		}
	}
	node, placedHere := plan[pod.UID]
	pl.mu.Unlock()

	klog.FromContext(ctx).V(2).Info("Placed gang", "podGroup", key, "members", len(plan), "minMember", minMember(pg))
	// The other placed members may sit in backoff: bring them to the active queue so the gang binds quickly.
	if len(toActivate) > 0 {
		pl.handle.Activate(klog.FromContext(ctx), toActivate)
	}
	if s := pl.prepareFilter(cs, pod); !s.IsSuccess() && !s.IsSkip() {
		return nil, s
	}
	if !placedHere {
		return nil, nil
	}
	return &fwk.PreFilterResult{NodeNames: sets.New(node)}, nil
}

// PreFilterExtensions returns nil: the plugin keeps no per-pod state that preemption would need to update.
func (pl *Gang) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// prepareFilter copies the reservations other than the pod's own into the cycle state; Skip if there are none.
func (pl *Gang) prepareFilter(cs fwk.CycleState, pod *v1.Pod) *fwk.Status {
	pl.mu.Lock()
	if len(pl.reserved) == 0 {
		// The common case on the hot path: no gang holds a placement, nothing to copy or expire.
		pl.mu.Unlock()
		return fwk.NewStatus(fwk.Skip)
	}
	pl.expireLocked(context.Background(), pl.now())
	var reserved map[string]request
	for node, rs := range pl.reserved {
		var sum request
		n := 0
		for uid, r := range rs {
			if uid == pod.UID {
				continue
			}
			sum.add(r.req)
			n++
		}
		if n > 0 {
			if reserved == nil {
				reserved = map[string]request{}
			}
			reserved[node] = sum
		}
	}
	pl.mu.Unlock()
	if len(reserved) == 0 {
		return fwk.NewStatus(fwk.Skip)
	}
	cs.Write(filterKey, &filterState{uid: pod.UID, req: podRequest(pod), reserved: reserved})
	return nil
}

// Filter rejects a node whose free capacity, less what is promised to placed gang members, is too small.
func (pl *Gang) Filter(_ context.Context, cs fwk.CycleState, _ *v1.Pod, ni fwk.NodeInfo) *fwk.Status {
	data, err := cs.Read(filterKey)
	if err != nil {
		return nil
	}
	st := data.(*filterState)
	extra, ok := st.reserved[ni.Node().Name]
	if !ok {
		return nil
	}
	if ok, res := fits(ni, st.req, extra); !ok {
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s (%s)", ReasonReserved, res))
	}
	return nil
}

// PostFilter releases the gang of a placed member that found no node, and keeps members from preempting one
// by one (see the package doc). Pods outside gangs are left to the next PostFilter plugin.
func (pl *Gang) PostFilter(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, _ fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	key, ok := podgroup.Key(pod)
	if !ok {
		return nil, fwk.NewStatus(fwk.Unschedulable)
	}
	pl.mu.Lock()
	g := pl.gangs[key]
	planned := false
	if g != nil {
		_, planned = g.plan[pod.UID]
	}
	pl.mu.Unlock()
	if planned {
		pl.release(ctx, key, fmt.Sprintf("member %s did not fit on its planned node", pod.Name))
	}
	return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "gang members do not preempt one by one")
}

// release drops the gang's placement and rejects its members waiting at Permit, so that the gang is retried as
// a whole. It is idempotent.
func (pl *Gang) release(ctx context.Context, key, why string) {
	pl.mu.Lock()
	if g := pl.gangs[key]; g != nil {
		pl.dropPlanLocked(g)
	}
	pl.mu.Unlock()
	var waiting []fwk.WaitingPod
	pl.handle.IterateOverWaitingPods(func(wp fwk.WaitingPod) {
		if k, ok := podgroup.Key(wp.GetPod()); ok && k == key {
			waiting = append(waiting, wp)
		}
	})
	for _, wp := range waiting {
		wp.Reject(Name, fmt.Sprintf("gang %s released: %s", key, why))
	}
	klog.FromContext(ctx).V(2).Info("Released gang", "podGroup", key, "reason", why, "rejectedWaiting", len(waiting))
}

func (pl *Gang) dropPlanLocked(g *gangState) {
	if len(g.plan) > 0 {
		pl.releases++ // freed capacity: cached failures of other gangs no longer hold
	}
	for uid, node := range g.plan {
		delete(pl.reserved[node], uid)
		if len(pl.reserved[node]) == 0 {
			delete(pl.reserved, node)
		}
	}
	g.plan = map[types.UID]string{}
}

// expireLocked drops placements whose deadline passed (members that never came) and forgets idle gangs.
func (pl *Gang) expireLocked(ctx context.Context, now time.Time) {
	for key, g := range pl.gangs {
		if len(g.plan) > 0 && now.After(g.deadline) {
			klog.FromContext(ctx).V(2).Info("Gang placement expired", "podGroup", key, "unplacedMembers", len(g.plan))
			pl.dropPlanLocked(g)
		}
		for uid, at := range g.assumed {
			if now.Sub(at) > 10*time.Minute {
				delete(g.assumed, uid) // long bound: the informer counts it now
			}
		}
		if len(g.plan) == 0 && len(g.assumed) == 0 && g.failure == "" {
			delete(pl.gangs, key)
		}
	}
}

func (pl *Gang) gangLocked(key string) *gangState {
	g := pl.gangs[key]
	if g == nil {
		g = newGangState()
		pl.gangs[key] = g
	}
	return g
}

// quorumLocked counts the members that are bound or assumed.
func (pl *Gang) quorumLocked(g *gangState, members []*v1.Pod) int {
	n := len(g.assumed)
	for _, m := range members {
		if _, assumed := g.assumed[m.UID]; m.Spec.NodeName != "" && !assumed {
			n++
		}
	}
	return n
}

// snapshotGeneration changes whenever a node of the cycle's snapshot changes (a pod added or removed, the
// node updated): the highest NodeInfo generation.
func snapshotGeneration(h fwk.Handle) int64 {
	nodes, err := h.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return -1
	}
	var g int64
	for _, n := range nodes {
		g = max(g, n.GetGeneration())
	}
	return g + int64(len(nodes))<<48
}

// recordFailure puts a Warning Event on the PodGroup, at most once per EventIntervalSeconds per gang.
func (pl *Gang) recordFailure(ctx context.Context, key string, pg *schedv1alpha1.PodGroup, msg string) {
	now := pl.now()
	pl.mu.Lock()
	g := pl.gangLocked(key)
	if now.Sub(g.lastEvent) < time.Duration(*pl.args.EventIntervalSeconds)*time.Second {
		pl.mu.Unlock()
		return
	}
	g.lastEvent = now
	pl.mu.Unlock()
	ref := pg.DeepCopy()
	ref.APIVersion, ref.Kind = schedv1alpha1.SchemeGroupVersion.String(), "PodGroup"
	if r := pl.handle.EventRecorder(); r != nil {
		r.Eventf(ref, nil, v1.EventTypeWarning, EventReasonUnschedulable, "Scheduling", msg)
	}
	klog.FromContext(ctx).V(4).Info("Gang does not fit", "podGroup", key, "reason", msg)
}
