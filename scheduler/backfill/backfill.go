package backfill

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	config "github.com/kubehtc/kubehtc/apis/config/v1alpha1"
	"github.com/kubehtc/kubehtc/scheduler/internal/fairshare"
	"github.com/kubehtc/kubehtc/scheduler/internal/podgroup"
	"github.com/kubehtc/kubehtc/scheduler/internal/reservation"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "Backfill"

// Reasons in statuses, conditions and Events.
const (
	// ReasonReserved: the node's capacity is reserved for a big job from a time the pod would run past.
	ReasonReserved = "node is reserved for a big job"
	// EventReasonReserved is the reason of the Normal Event on a pod that got (or moved) a reservation.
	EventReasonReserved = "Reserved"
	// ConditionReserved is the pod condition that says where and when the pod's job is reserved.
	ConditionReserved v1.PodConditionType = "kubehtc.io/Reserved"
)

// fairShareName is the FairShare plugin's name: a pod it rejects is over its queue's limit, which a
// reservation cannot help.
const fairShareName = "FairShare"

// stateKey holds what Filter needs for one pod.
const stateKey fwk.StateKey = Name + "/state"

// Backfill keeps reservations for big jobs and lets other pods use reserved nodes only around them.
type Backfill struct {
	handle fwk.Handle
	args   *config.BackfillArgs
	big    reservation.Resources
	groups *podgroup.Store
	ranker fairshare.Ranker
	pods   corelisters.PodLister
	now    func() time.Time

	mu  sync.Mutex
	set *reservation.Set
	// holders are a pod of each reserved job, by reservation key: what ranks the job, and what a recomputation
	// matches nodes against.
	holders map[string]*v1.Pod
	// computed is when each held reservation was last computed.
	computed map[string]time.Time
}

var (
	_ fwk.PreFilterPlugin   = &Backfill{}
	_ fwk.FilterPlugin      = &Backfill{}
	_ fwk.PostFilterPlugin  = &Backfill{}
	_ fwk.ReservePlugin     = &Backfill{}
	_ fwk.EnqueueExtensions = &Backfill{}
)

// New builds the plugin from its args (see config.BackfillArgs).
func New(_ context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := config.DecodeBackfillArgs(obj)
	if err != nil {
		return nil, err
	}
	groups, err := podgroup.For(h)
	if err != nil {
		return nil, err
	}
	ranker, err := fairshare.For(h)
	if err != nil {
		return nil, err
	}
	big := reservation.Resources{}
	for name, q := range args.BigPodRequests {
		big[v1.ResourceName(name)] = quantity(v1.ResourceName(name), q.MilliValue(), q.Value())
	}
	registerMetrics()
	return &Backfill{
		handle:   h,
		args:     args,
		big:      big,
		groups:   groups,
		ranker:   ranker,
		pods:     h.SharedInformerFactory().Core().V1().Pods().Lister(),
		now:      podgroup.Clock(h), // virtual time in simulations (simframework)
		set:      reservation.NewSet(int(args.MaxReservations)),
		holders:  map[string]*v1.Pod{},
		computed: map[string]time.Time{},
	}, nil
}

// quantity is a request in the model's units: milli-CPU for cpu, whole units otherwise.
func quantity(name v1.ResourceName, milli, whole int64) int64 {
	if name == v1.ResourceCPU {
		return milli
	}
	return whole
}

// Name returns the plugin's name.
func (pl *Backfill) Name() string { return Name }

// state is Filter's view for one pod: its job, request, expected end and the reservations, copied in
// PreFilter (reservations are replaced, never modified, so the copy is consistent).
type state struct {
	key  string
	req  reservation.Resources
	end  time.Time
	held []*reservation.Reservation
}

func (s *state) Clone() fwk.StateData { return s }

// PreFilter releases reservations whose job started or is gone, moves those that lost a node, and prepares
// Filter; Skip when no reservation is held (the common case costs one lock).
func (pl *Backfill) PreFilter(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	pl.mu.Lock()
	if pl.set.Len() == 0 {
		pl.mu.Unlock()
		return nil, fwk.NewStatus(fwk.Skip)
	}
	now := pl.now()
	pl.sweepLocked(ctx, now)
	held := append([]*reservation.Reservation(nil), pl.set.All()...)
	pl.mu.Unlock()
	if len(held) == 0 {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	cs.Write(stateKey, &state{key: jobKey(pod), req: requestOf(pod), end: expectedEnd(pod, now, pl.args), held: held})
	return nil, nil
}

// PreFilterExtensions returns nil: Filter's decision does not depend on other pods being added or removed
// during preemption beyond what the node reports.
func (pl *Backfill) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter lets the pod onto a node reserved for another job only if it ends before the reservation starts or
// leaves the reserved capacity free at the start.
func (pl *Backfill) Filter(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, ni fwk.NodeInfo) *fwk.Status {
	s, err := read(cs)
	if err != nil || s == nil {
		return nil
	}
	name := ni.Node().Name
	var model *reservation.Node
	for _, r := range s.held {
		if r.Key == s.key {
			continue
		}
		h := r.HeldOn(name)
		if h == nil {
			continue
		}
		if !s.end.IsZero() && !s.end.After(r.Plan.Start) {
			continue // backfill: the pod is gone by the start
		}
		if model == nil {
			model = pl.nodeModel(ni)
		}
		others := reservation.Resources{}
		for _, o := range s.held {
			if o.Key != s.key && o.Key != r.Key {
				others.Add(o.HeldOn(name))
			}
		}
		model.Held = others
		if !reservation.FitsAt(*model, h, s.req, r.Plan.Start) {
			klog.FromContext(ctx).V(5).Info("Reserved node refused", "pod", klog.KObj(pod), "node", name, "job", r.Key)
			return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: %s from %s", ReasonReserved, r.Key, r.Plan.Start.UTC().Format("15:04")))
		}
	}
	return nil
}

func read(cs fwk.CycleState) (*state, error) {
	d, err := cs.Read(stateKey)
	if err != nil {
		return nil, err
	}
	s, _ := d.(*state)
	return s, nil
}

// nodeModel is the node as the reservation model sees it: allocatable and the running pods with their
// expected ends.
func (pl *Backfill) nodeModel(ni fwk.NodeInfo) *reservation.Node {
	now := pl.now()
	a := ni.GetAllocatable()
	n := &reservation.Node{Name: ni.Node().Name, Allocatable: reservation.Resources{
		v1.ResourceCPU: a.GetMilliCPU(), v1.ResourceMemory: a.GetMemory(),
	}}
	for k, v := range a.GetScalarResources() {
		n.Allocatable[k] = v
	}
	for _, pi := range ni.GetPods() {
		p := pi.GetPod()
		n.Running = append(n.Running, reservation.Running{Request: requestOf(p), End: expectedEnd(p, now, pl.args)})
	}
	return n
}

// requestOf is the pod's effective request in the model's units.
func requestOf(pod *v1.Pod) reservation.Resources {
	rl := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	out := make(reservation.Resources, len(rl))
	for name, q := range rl {
		if name == v1.ResourcePods || name == v1.ResourceEphemeralStorage {
			continue
		}
		out[name] = quantity(name, q.MilliValue(), q.Value())
	}
	return out
}

// jobKey names the pod's job: its PodGroup, else the pod itself.
func jobKey(pod *v1.Pod) string {
	if k, ok := podgroup.Key(pod); ok {
		return "podgroup " + k
	}
	return "pod " + pod.Namespace + "/" + pod.Name
}

// Reserve releases the reservation of the pod's job, which is starting, and counts backfilled pods.
func (pl *Backfill) Reserve(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, node string) *fwk.Status {
	key := jobKey(pod)
	pl.mu.Lock()
	r := pl.set.Delete(key)
	if r != nil {
		delete(pl.holders, key)
		delete(pl.computed, key)
	}
	n := pl.set.Len()
	pl.mu.Unlock()
	if r != nil {
		reservationsGauge.Set(float64(n))
		klog.FromContext(ctx).V(2).Info("Reservation released: the job starts", "job", key, "node", node,
			"reservedStart", r.Plan.Start, "held", time.Duration(pl.now().Sub(r.Since)))
	}
	if s, err := read(cs); err == nil && s != nil && !s.end.IsZero() {
		for _, o := range s.held {
			if o.Key != key && o.HeldOn(node) != nil && !s.end.After(o.Plan.Start) {
				backfilledPods.Inc()
				klog.FromContext(ctx).V(4).Info("Backfilled", "pod", klog.KObj(pod), "node", node, "before", o.Key)
				break
			}
		}
	}
	return nil
}

// Unreserve does nothing: a job whose start fails gets a new reservation at its next failure.
func (pl *Backfill) Unreserve(context.Context, fwk.CycleState, *v1.Pod, string) {}

// EventsToRegister lists the events after which a pod this plugin rejected may fit.
func (pl *Backfill) EventsToRegister(context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		// A reserved job's pod being bound releases its reservation.
		{Event: fwk.ClusterEvent{Resource: fwk.AssignedPod, ActionType: fwk.Add}, QueueingHintFn: isSchedulableAfterPodChange},
		// A reserved job deleted before it started releases its reservation.
		{Event: fwk.ClusterEvent{Resource: fwk.UnscheduledPod, ActionType: fwk.Delete}, QueueingHintFn: isSchedulableAfterPodChange},
		// A pod ending early can move a reservation's start or nodes.
		{Event: fwk.ClusterEvent{Resource: fwk.AssignedPod, ActionType: fwk.Delete}, QueueingHintFn: isSchedulableAfterPodChange},
		// A reserved node leaving moves the reservation to other nodes.
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Delete}, QueueingHintFn: isSchedulableAfterNodeChange},
	}, nil
}

func isSchedulableAfterPodChange(logger klog.Logger, pod *v1.Pod, _, _ any) (fwk.QueueingHint, error) {
	logger.V(5).Info("Reservations may have changed after a pod event", "pod", klog.KObj(pod))
	return fwk.Queue, nil
}

func isSchedulableAfterNodeChange(logger klog.Logger, pod *v1.Pod, _, _ any) (fwk.QueueingHint, error) {
	logger.V(5).Info("Reservations may have moved after a node left", "pod", klog.KObj(pod))
	return fwk.Queue, nil
}

// isBig reports whether pod's job may hold a reservation: a gang of more than one pod, or a pod requesting at
// least one of the bigPodRequests.
func (pl *Backfill) isBig(pod *v1.Pod, req reservation.Resources) bool {
	if k, ok := podgroup.Key(pod); ok {
		if pg := pl.groups.Get(k); pg != nil && pg.Spec.MinMember > 1 {
			return true
		}
	}
	for name, least := range pl.big {
		if req[name] >= least {
			return true
		}
	}
	return false
}

// before reports whether pod a's job ranks before pod b's in the queue's order: priority, then fair-share
// rank, then the earlier job (QueueOrder's order without its FIFO tail).
func (pl *Backfill) before(a, b *v1.Pod) bool {
	if pa, pb := corev1helpers.PodPriority(a), corev1helpers.PodPriority(b); pa != pb {
		return pa > pb
	}
	if ra, rb := pl.ranker.Rank(a), pl.ranker.Rank(b); ra != rb {
		return ra < rb
	}
	ta, tb := pl.since(a), pl.since(b)
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return jobKey(a) < jobKey(b)
}

func (pl *Backfill) since(p *v1.Pod) time.Time {
	if k, ok := podgroup.Key(p); ok {
		if pg := pl.groups.Get(k); pg != nil {
			return pg.CreationTimestamp.Time
		}
	}
	return p.CreationTimestamp.Time
}

// eligible reports whether a member of pod's job may ever run on node: required node affinity and selector,
// taints, and allocatable at least the member's request.
func eligible(logger klog.Logger, pod *v1.Pod, aff nodeaffinity.RequiredNodeAffinity, ni fwk.NodeInfo, member reservation.Resources) bool {
	node := ni.Node()
	if node == nil || node.Spec.Unschedulable || node.DeletionTimestamp != nil {
		return false
	}
	if ok, _ := aff.Match(node); !ok {
		return false
	}
	if _, bad := corev1helpers.FindMatchingUntoleratedTaint(logger, node.Spec.Taints, pod.Spec.Tolerations, func(t *v1.Taint) bool {
		return t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute
	}, false); bad {
		return false
	}
	a := ni.GetAllocatable()
	for name, want := range member {
		var have int64
		switch name {
		case v1.ResourceCPU:
			have = a.GetMilliCPU()
		case v1.ResourceMemory:
			have = a.GetMemory()
		default:
			have = a.GetScalarResources()[name]
		}
		if have < want {
			return false
		}
	}
	return true
}

// job is what pod's job still needs: for a gang, minMember minus the members bound, each as large as the
// largest pending member; for a pod, itself.
func (pl *Backfill) job(pod *v1.Pod, req reservation.Resources) (reservation.Job, *schedv1alpha1.PodGroup) {
	k, ok := podgroup.Key(pod)
	if !ok {
		return reservation.Job{Member: req, Count: 1}, nil
	}
	pg := pl.groups.Get(k)
	if pg == nil {
		return reservation.Job{Member: req, Count: 1}, nil
	}
	member := reservation.Resources{}
	bound := 0
	for _, m := range pl.groups.Members(k) {
		if m.Spec.NodeName != "" {
			bound++
			continue
		}
		for name, v := range requestOf(m) {
			member[name] = max(member[name], v)
		}
	}
	if len(member) == 0 {
		member = req
	}
	return reservation.Job{Member: member, Count: max(int(pg.Spec.MinMember)-bound, 1)}, pg
}

// describe is the human form of a plan: "reserved nodes n1,n2 from 14:32 (in 42m)".
func describe(p reservation.Plan, now time.Time) string {
	names := make([]string, 0, len(p.Nodes))
	for _, a := range p.Nodes {
		names = append(names, a.Node)
	}
	return fmt.Sprintf("reserved nodes %s from %s (in %s)", strings.Join(names, ","), p.Start.UTC().Format("15:04"),
		p.Start.Sub(now).Round(time.Minute))
}
