package gang

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	config "github.com/kubehtc/kubehtc/apis/config/v1alpha1"
	"github.com/kubehtc/kubehtc/scheduler/internal/podgroup"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "Gang"

// Reasons in statuses and Events.
const (
	// ReasonWaitingForMembers: fewer than minMember pods of the gang exist.
	ReasonWaitingForMembers = "waiting for gang members"
	// ReasonPodGroupNotFound: the pod names a PodGroup that does not exist.
	ReasonPodGroupNotFound = "PodGroup not found"
	// ReasonTwoGangAPIs: the pod is in a scheduler-plugins PodGroup and an upstream scheduling.k8s.io one.
	ReasonTwoGangAPIs = "conflicting gang membership"
	// ReasonReserved: the node's free capacity is promised to another gang's members.
	ReasonReserved = "node capacity is reserved for a gang"
	// EventReasonUnschedulable is the reason of the Warning Event on a PodGroup whose gang does not fit.
	EventReasonUnschedulable = "GangUnschedulable"
)

// planningKey marks the CycleStates the plugin builds to place a gang; its own PreFilter then skips.
const planningKey fwk.StateKey = Name + "/planning"

// filterKey holds what Filter needs for one pod: the reservations to respect.
const filterKey fwk.StateKey = Name + "/filter"

// preFilterRunner is the part of the framework the plugin runs to place other members of a gang. The handle
// passed to plugins is the profile's framework, which implements it.
type preFilterRunner interface {
	RunPreFilterPlugins(ctx context.Context, state fwk.CycleState, pod *v1.Pod) (*fwk.PreFilterResult, *fwk.Status, sets.Set[string])
}

// Gang schedules the pods of a PodGroup all or nothing.
type Gang struct {
	handle fwk.Handle
	runner preFilterRunner
	store  *podgroup.Store
	args   *config.GangArgs
	gpu    v1.ResourceName
	now    func() time.Time

	mu    sync.Mutex
	gangs map[string]*gangState
	// reserved holds the placed, not yet assumed members: node name → pod UID → reservation.
	reserved map[string]map[types.UID]reservation
	// releases counts dropped placements; with the snapshot's generation it tells whether the cluster may have
	// changed since a gang last failed.
	releases int64
}

var (
	_ fwk.PreEnqueuePlugin  = &Gang{}
	_ fwk.PreFilterPlugin   = &Gang{}
	_ fwk.FilterPlugin      = &Gang{}
	_ fwk.PostFilterPlugin  = &Gang{}
	_ fwk.ReservePlugin     = &Gang{}
	_ fwk.PermitPlugin      = &Gang{}
	_ fwk.EnqueueExtensions = &Gang{}
)

// New builds the plugin from its args (see config.GangArgs).
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := config.DecodeGangArgs(obj)
	if err != nil {
		return nil, err
	}
	runner, ok := h.(preFilterRunner)
	if !ok {
		return nil, fmt.Errorf("%s: the framework handle %T cannot run PreFilter plugins", Name, h)
	}
	store, err := podgroup.For(h)
	if err != nil {
		return nil, err
	}
	pl := &Gang{
		handle:   h,
		runner:   runner,
		store:    store,
		args:     args,
		gpu:      v1.ResourceName(args.GPUResource),
		now:      podgroup.Clock(h), // virtual time in simulations (simframework)
		gangs:    map[string]*gangState{},
		reserved: map[string]map[types.UID]reservation{},
	}
	// The scheduling queue re-runs PreEnqueue on an unscheduled pod's arrival only for its own pod-group API
	// (feature gate GenericWorkload), so the plugin releases a gang's held members itself when the pod that
	// completes minMember arrives.
	if _, err := h.SharedInformerFactory().Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*v1.Pod); ok {
				pl.activateIfComplete(ctx, p)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("%s: watching pods: %w", Name, err)
	}
	return pl, nil
}

// activateIfComplete moves the unscheduled members of pod's gang back to the active queue (re-running
// PreEnqueue) once the gang has minMember pods.
func (pl *Gang) activateIfComplete(ctx context.Context, pod *v1.Pod) {
	key, ok := podgroup.Key(pod)
	if !ok || pod.Spec.NodeName != "" {
		return
	}
	pg := pl.store.Get(key)
	if pg == nil {
		return
	}
	members := pl.store.Members(key)
	if int32(len(members)) < minMember(pg) {
		return
	}
	waiting := make(map[string]*v1.Pod, len(members))
	for _, m := range members {
		if m.Spec.NodeName == "" && m.UID != pod.UID {
			waiting[m.Namespace+"/"+m.Name] = m
		}
	}
	if len(waiting) > 0 {
		pl.handle.Activate(klog.FromContext(ctx), waiting)
	}
}

// Name returns the plugin's name.
func (pl *Gang) Name() string { return Name }

// PreEnqueue keeps a member out of the scheduling queue until its PodGroup exists and has minMember live pods.
func (pl *Gang) PreEnqueue(_ context.Context, pod *v1.Pod) *fwk.Status {
	key, ok := podgroup.Key(pod)
	if !ok {
		return nil
	}
	if sg := pod.Spec.SchedulingGroup; sg != nil && sg.PodGroupName != nil {
		// Both this plugin and the in-tree GangScheduling (scheduling.k8s.io) would hold the pod: refuse clearly.
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: the pod names both PodGroup %s (label %s) and scheduling.k8s.io PodGroup %q (spec.schedulingGroup); use one",
			ReasonTwoGangAPIs, key, podgroup.Label, *sg.PodGroupName))
	}
	pg := pl.store.Get(key)
	if pg == nil {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: %s", ReasonPodGroupNotFound, key))
	}
	if n := len(pl.store.Members(key)); int32(n) < minMember(pg) {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable,
			fmt.Sprintf("%s: gang %s has %d of minMember %d pods", ReasonWaitingForMembers, key, n, minMember(pg)))
	}
	return nil
}

// EventsToRegister lists the events after which a member rejected by this plugin may fit.
func (pl *Gang) EventsToRegister(context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		// A new member can complete the gang's minMember.
		{Event: fwk.ClusterEvent{Resource: fwk.UnscheduledPod, ActionType: fwk.Add}, QueueingHintFn: pl.sameGangPod},
		// A pod that leaves a node frees capacity a gang may need.
		{Event: fwk.ClusterEvent{Resource: fwk.AssignedPod, ActionType: fwk.Delete}, QueueingHintFn: queue},
		// New or changed nodes add capacity.
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeAllocatable | fwk.UpdateNodeTaint | fwk.UpdateNodeLabel}, QueueingHintFn: queue},
		// The PodGroup appearing, or its minMember/minResources changing, can admit its members.
		{Event: fwk.ClusterEvent{Resource: podgroup.EventResource, ActionType: fwk.Add | fwk.Update}, QueueingHintFn: pl.sameGangGroup},
	}, nil
}

func queue(klog.Logger, *v1.Pod, any, any) (fwk.QueueingHint, error) { return fwk.Queue, nil }

func (pl *Gang) sameGangPod(_ klog.Logger, pod *v1.Pod, _, newObj any) (fwk.QueueingHint, error) {
	added, ok := newObj.(*v1.Pod)
	if !ok {
		return fwk.Queue, nil
	}
	k1, ok1 := podgroup.Key(pod)
	k2, ok2 := podgroup.Key(added)
	if ok1 && ok2 && k1 == k2 {
		return fwk.Queue, nil
	}
	return fwk.QueueSkip, nil
}

func (pl *Gang) sameGangGroup(_ klog.Logger, pod *v1.Pod, _, newObj any) (fwk.QueueingHint, error) {
	key, ok := podgroup.Key(pod)
	if !ok {
		return fwk.QueueSkip, nil
	}
	// The scheduler's dynamic informer hands over unstructured objects; compare by namespace/name.
	type named interface {
		GetNamespace() string
		GetName() string
	}
	if o, ok := newObj.(named); ok && o.GetNamespace()+"/"+o.GetName() != key {
		return fwk.QueueSkip, nil
	}
	return fwk.Queue, nil
}

// minMember is the PodGroup's minMember (at least 1).
func minMember(pg *schedv1alpha1.PodGroup) int32 {
	return max(pg.Spec.MinMember, 1)
}

// timeout is how long a placement is held and members wait at Permit.
func (pl *Gang) timeout(pg *schedv1alpha1.PodGroup) time.Duration {
	if pg != nil && pg.Spec.ScheduleTimeoutSeconds != nil && *pg.Spec.ScheduleTimeoutSeconds > 0 {
		return time.Duration(*pg.Spec.ScheduleTimeoutSeconds) * time.Second
	}
	return time.Duration(pl.args.DefaultScheduleTimeoutSeconds) * time.Second
}
