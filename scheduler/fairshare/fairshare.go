package fairshare

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	config "github.com/kubehtc/kubehtc/apis/config/v1alpha1"
	"github.com/kubehtc/kubehtc/quota/fairshare"
	internal "github.com/kubehtc/kubehtc/scheduler/internal/fairshare"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "FairShare"

// stateKey is where PreFilter leaves the pod's queue for PostFilter.
const stateKey fwk.StateKey = Name + "/prefilter"

// Reasons in the statuses of rejected pods.
const (
	// ReasonNoQueue: the namespace names a queue that does not exist or is not a leaf.
	ReasonNoQueue = "fair share: queue not usable"
	// ReasonLimit: the pod would take a queue past its spec.limit.
	ReasonLimit = "fair share: queue limit"
	// ReasonCap: the pod would take a queue past what it may use now (target without surplus, or what its
	// siblings use and hold back).
	ReasonCap = "fair share: queue cap"
	// ReasonNoReclaim: reclaim found nothing it may preempt.
	ReasonNoReclaim = "fair share: nothing to reclaim"
	// ReasonWaitingForVictims: reclaimed pods are still terminating on the nominated node.
	ReasonWaitingForVictims = "fair share: waiting for reclaimed pods to terminate"
)

// FairShare enforces queue limits and reclaims guaranteed shares.
type FairShare struct {
	handle fwk.Handle
	args   *config.FairShareArgs
	view   internal.View
	// memo keeps reclaim's preemption units between PostFilter calls that see the same cluster.
	memo unitsMemo
}

var (
	_ fwk.PreFilterPlugin   = &FairShare{}
	_ fwk.PostFilterPlugin  = &FairShare{}
	_ fwk.ReservePlugin     = &FairShare{}
	_ fwk.EnqueueExtensions = &FairShare{}
)

// New builds the plugin from its args (config.FairShareArgs) on the scheduler's shared fair-share state.
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := config.DecodeFairShareArgs(obj)
	if err != nil {
		return nil, err
	}
	r, err := internal.For(h)
	if err != nil {
		return nil, err
	}
	v, ok := r.(internal.View)
	if !ok {
		return nil, fmt.Errorf("fairshare: the scheduler's ranker %T does not expose queue state", r)
	}
	pl := &FairShare{handle: h, args: args, view: v}
	startMetrics(ctx, v, h.SharedInformerFactory())
	return pl, nil
}

// Name returns the plugin's name.
func (pl *FairShare) Name() string { return Name }

// preFilterState is the pod's place in the tree for this cycle; read-only after PreFilter.
type preFilterState struct {
	leaf, user string
	requests   v1.ResourceList
	charge     float64
}

// Clone returns the state itself: it is not modified after PreFilter.
func (s *preFilterState) Clone() fwk.StateData { return s }

// PreFilter checks the pod's queue: it exists and is a leaf, and adding the pod keeps every queue on its path
// within its limit and cap.
func (pl *FairShare) PreFilter(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	leaf := pl.view.LeafOf(pod.Namespace)
	if leaf == "" {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	tree, _, err := pl.view.State()
	if err != nil {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: namespace %s is in queue %q but %v", ReasonNoQueue, pod.Namespace, leaf, err))
	}
	n := tree.Node(leaf)
	if n == nil || !n.IsLeaf() || n.Parent == nil {
		what := "does not exist"
		if n != nil {
			what = "is not a leaf (namespaces join leaf queues)"
		}
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("%s: queue %q of namespace %s %s", ReasonNoQueue, leaf, pod.Namespace, what))
	}
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	s := &preFilterState{leaf: leaf, user: fairshare.UserOf(pod), requests: req, charge: tree.Policy.Charge(req)}
	cs.Write(stateKey, s)
	logger := klog.FromContext(ctx)
	if x, res := tree.ExceedsLimit(leaf, req); x != nil {
		lim := x.Limit[res]
		msg := fmt.Sprintf("%s: queue %q would exceed its limit on %s: %g in use + %s requested > %s", ReasonLimit, x.Name, res,
			x.Requests[res], quantityString(req, res), lim.String())
		logger.V(4).Info("FairShare rejects pod", "pod", klog.KObj(pod), "queue", x.Name, "reason", msg)
		rejections.WithLabelValues(x.Name, "limit").Inc()
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, msg)
	}
	if x := tree.ExceedsCap(leaf, s.charge); x != nil {
		why := "its siblings use or hold back the rest of its parent"
		if !x.AcceptSurplus {
			why = "it does not accept surplus beyond its target"
		}
		msg := fmt.Sprintf("%s: queue %q would use %.3g + %.3g core-equivalents, over the %.3g it may use now (%s)", ReasonCap, x.Name, x.Usage, s.charge, x.Cap, why)
		logger.V(4).Info("FairShare rejects pod", "pod", klog.KObj(pod), "queue", x.Name, "reason", msg)
		rejections.WithLabelValues(x.Name, "cap").Inc()
		// Unschedulable, not unresolvable: reclaim (PostFilter) may bring a queue below its target back up.
		return nil, fwk.NewStatus(fwk.Unschedulable, msg)
	}
	return nil, nil
}

func quantityString(req v1.ResourceList, r v1.ResourceName) string {
	q := req[r]
	return q.String()
}

// PreFilterExtensions returns nil: the check does not depend on which pods run on a given node.
func (pl *FairShare) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Reserve counts the pod in its queue until the informer sees it bound.
func (pl *FairShare) Reserve(_ context.Context, _ fwk.CycleState, pod *v1.Pod, _ string) *fwk.Status {
	if pl.view.LeafOf(pod.Namespace) != "" {
		pl.view.Assume(pod)
	}
	return nil
}

// Unreserve undoes Reserve.
func (pl *FairShare) Unreserve(_ context.Context, _ fwk.CycleState, pod *v1.Pod, _ string) {
	pl.view.Forget(pod)
}

// EventsToRegister lists the events after which a pod rejected by this plugin may fit.
func (pl *FairShare) EventsToRegister(context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		// A pod leaving a node lowers its queue's usage (limits, caps) and frees room.
		{Event: fwk.ClusterEvent{Resource: fwk.AssignedPod, ActionType: fwk.Delete}, QueueingHintFn: queue},
		// New nodes raise the capacity queues divide, so targets and caps; an uncordoned node is room again.
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeAllocatable | fwk.UpdateNodeTaint}, QueueingHintFn: queue},
		// A Queue created or changed (a raised limit, a new weight) or the namespace label set.
		{Event: fwk.ClusterEvent{Resource: internal.EventResource, ActionType: fwk.Add | fwk.Update}, QueueingHintFn: queue},
	}, nil
}

func queue(klog.Logger, *v1.Pod, any, any) (fwk.QueueingHint, error) { return fwk.Queue, nil }

func readState(cs fwk.CycleState) (*preFilterState, error) {
	data, err := cs.Read(stateKey)
	if err != nil {
		return nil, err
	}
	s, ok := data.(*preFilterState)
	if !ok {
		return nil, fmt.Errorf("%q has type %T", stateKey, data)
	}
	return s, nil
}
