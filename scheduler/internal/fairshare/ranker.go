package fairshare

import (
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	resourcehelper "k8s.io/component-helpers/resource"
	fwk "k8s.io/kube-scheduler/framework"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/quota/fairshare"
	"github.com/kubehtc/kubehtc/scheduler/internal/crdinformer"
)

// EventResource is how the scheduler names Queue events in EventsToRegister (resource.version.group).
const EventResource fwk.EventResource = "queues.v1alpha1.kubehtc.io"

// maxAge bounds how long a computed state is reused while nothing changes: decay moves with time alone.
const maxAge = time.Second

func init() { NewRankerFunc = newRanker }

// View is the fair-share state the FairShare plugin decides on; the Ranker that For returns implements it.
type View interface {
	Ranker
	// LeafOf returns the queue named by the namespace's label ("" if none).
	LeafOf(namespace string) string
	// State returns the tree with usage as of now and its ranking. The tree is shared: do not modify it.
	State() (*fairshare.Tree, *fairshare.Ranking, error)
	// Fresh returns a new tree with usage as of now that the caller may modify (to simulate preemption).
	Fresh() (*fairshare.Tree, error)
	// Assume counts a pod the scheduler reserved a node for until the informer sees it bound; Forget undoes it.
	Assume(pod *v1.Pod)
	Forget(pod *v1.Pod)
}

// podUsage is what one pod that holds a node adds.
type podUsage struct {
	namespace, user string
	requests        v1.ResourceList
	values          map[v1.ResourceName]float64
	charge          float64 // under the policy of the root Queue
}

// userSums are the sums over one user's pods.
type userSums struct {
	values map[v1.ResourceName]float64
	charge float64
	pods   int
}

type nsUser struct{ namespace, user string }

// ranker combines the decayed usage of Queue status (written by the quota controller each interval) with the
// usage of the pods the scheduler sees bound or has reserved nodes for, projected to now:
// D(now) = β·D(status) + (1−β)·u(live), β = 0.5^((now − lastAccountingTime)/halfLife). Ranks so react to
// bindings immediately and the controller's next interval confirms them.
type ranker struct {
	now func() time.Time

	mu       sync.Mutex
	queues   map[string]*kubehtcv1alpha1.Queue
	leafOf   map[string]string // namespace → queue label
	pods     map[types.UID]*podUsage
	assumed  map[types.UID]*podUsage
	policy   fairshare.Policy
	byUser   map[nsUser]*userSums                   // sums of pods and assumed
	nodes    map[string]map[v1.ResourceName]float64 // allocatable of the nodes
	capacity map[v1.ResourceName]float64            // their sum
	dirty    bool
	computed time.Time
	tree     *fairshare.Tree
	ranking  *fairshare.Ranking
	err      error
}

var _ View = &ranker{}

func newRanker(h fwk.Handle) (Ranker, error) {
	f := h.SharedInformerFactory()
	cfg := h.KubeConfig()
	if f == nil || cfg == nil {
		return nil, errors.New("fairshare: the scheduler has no informer factory or kubeconfig")
	}
	queues, err := crdinformer.Register(f, cfg, crdinformer.Resource{
		Kind: "Queue", GroupVersion: kubehtcv1alpha1.GroupVersion, Plural: "queues", AddToScheme: kubehtcv1alpha1.AddToScheme,
		Object: &kubehtcv1alpha1.Queue{}, NewList: func() runtime.Object { return &kubehtcv1alpha1.QueueList{} },
	})
	if err != nil {
		return nil, fmt.Errorf("fairshare: %w", err)
	}
	r, err := emptyRanker(time.Now)
	if err != nil {
		return nil, err
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		set func(obj any, present bool)
	}{
		{queues, r.setQueue},
		{f.Core().V1().Namespaces().Informer(), r.setNamespace},
		{f.Core().V1().Pods().Informer(), r.setPod},
		{f.Core().V1().Nodes().Informer(), r.setNode},
	}
	for _, hd := range handlers {
		set := hd.set
		if _, err := hd.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { set(obj, true) },
			UpdateFunc: func(_, obj any) { set(obj, true) },
			DeleteFunc: func(obj any) {
				if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = d.Obj
				}
				set(obj, false)
			},
		}); err != nil {
			return nil, fmt.Errorf("fairshare: event handler: %w", err)
		}
	}
	return r, nil
}

// emptyRanker returns a ranker that has seen nothing yet, under the default policy, with clock now.
func emptyRanker(now func() time.Time) (*ranker, error) {
	pol, err := fairshare.PolicyFor(nil)
	if err != nil {
		return nil, err
	}
	return &ranker{
		now:      now,
		policy:   pol,
		queues:   map[string]*kubehtcv1alpha1.Queue{},
		leafOf:   map[string]string{},
		pods:     map[types.UID]*podUsage{},
		assumed:  map[types.UID]*podUsage{},
		byUser:   map[nsUser]*userSums{},
		nodes:    map[string]map[v1.ResourceName]float64{},
		capacity: map[v1.ResourceName]float64{},
		dirty:    true,
	}, nil
}

func (r *ranker) setQueue(obj any, present bool) {
	q, ok := obj.(*kubehtcv1alpha1.Queue)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if present {
		r.queues[q.Name] = q
	} else {
		delete(r.queues, q.Name)
	}
	r.dirty = true
	if q.Name != kubehtcv1alpha1.RootQueueName {
		return
	}
	var root *kubehtcv1alpha1.Queue
	if present {
		root = q
	}
	if pol, err := fairshare.PolicyFor(root); err == nil {
		// Charges depend on the core-equivalents: recount every pod (rare: the site policy changed).
		r.policy = pol
		r.byUser = map[nsUser]*userSums{}
		for _, m := range []map[types.UID]*podUsage{r.pods, r.assumed} {
			for _, u := range m {
				u.charge = pol.Charge(u.requests)
				r.add(u, 1)
			}
		}
	}
}

func (r *ranker) setNamespace(obj any, present bool) {
	ns, ok := obj.(*v1.Namespace)
	if !ok {
		return
	}
	leaf := fairshare.QueueOf(ns)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !present || leaf == "" {
		if _, had := r.leafOf[ns.Name]; had {
			delete(r.leafOf, ns.Name)
			r.dirty = true
		}
		return
	}
	if r.leafOf[ns.Name] != leaf {
		r.leafOf[ns.Name] = leaf
		r.dirty = true
	}
}

func (r *ranker) setNode(obj any, present bool) {
	n, ok := obj.(*v1.Node)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range r.nodes[n.Name] {
		r.capacity[k] -= v
	}
	delete(r.nodes, n.Name)
	// Cordoned nodes count: their pods still run, and cordoning for maintenance should not shift targets.
	if present {
		alloc := make(map[v1.ResourceName]float64, len(n.Status.Allocatable))
		for k, q := range n.Status.Allocatable {
			alloc[k] = q.AsApproximateFloat64()
			r.capacity[k] += alloc[k]
		}
		r.nodes[n.Name] = alloc
	}
	r.dirty = true
}

func (r *ranker) usageOf(pod *v1.Pod) *podUsage {
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	u := &podUsage{namespace: pod.Namespace, user: fairshare.UserOf(pod), requests: req,
		values: make(map[v1.ResourceName]float64, len(req)), charge: r.policy.Charge(req)}
	for k, q := range req {
		u.values[k] = q.AsApproximateFloat64()
	}
	return u
}

// add adds sign·u to the per-user sums.
func (r *ranker) add(u *podUsage, sign float64) {
	k := nsUser{u.namespace, u.user}
	sums := r.byUser[k]
	if sums == nil {
		sums = &userSums{values: map[v1.ResourceName]float64{}}
		r.byUser[k] = sums
	}
	for res, v := range u.values {
		sums.values[res] += sign * v
	}
	sums.charge += sign * u.charge
	sums.pods += int(sign)
	if sums.pods <= 0 {
		delete(r.byUser, k)
	}
	r.dirty = true
}

func (r *ranker) setPod(obj any, present bool) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	holds := present && fairshare.Holds(pod)
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.assumed[pod.UID]; ok && (holds || !present) {
		delete(r.assumed, pod.UID)
		r.add(a, -1)
	}
	old, had := r.pods[pod.UID]
	switch {
	case holds && !had:
		u := r.usageOf(pod)
		r.pods[pod.UID] = u
		r.add(u, 1)
	case !holds && had:
		delete(r.pods, pod.UID)
		r.add(old, -1)
	}
}

// Assume counts pod (reserved a node, not yet bound) until the informer sees it bound.
func (r *ranker) Assume(pod *v1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pods[pod.UID]; ok {
		return
	}
	if _, ok := r.assumed[pod.UID]; ok {
		return
	}
	u := r.usageOf(pod)
	r.assumed[pod.UID] = u
	r.add(u, 1)
}

// Forget undoes Assume (the binding failed).
func (r *ranker) Forget(pod *v1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u, ok := r.assumed[pod.UID]; ok {
		delete(r.assumed, pod.UID)
		r.add(u, -1)
	}
}

// LeafOf returns the queue label of the namespace.
func (r *ranker) LeafOf(namespace string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leafOf[namespace]
}

// Rank returns the pod's Fair Tree position: 0 outside fair share, from 1 inside.
func (r *ranker) Rank(pod *v1.Pod) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	leaf := r.leafOf[pod.Namespace]
	if leaf == "" {
		return 0
	}
	r.refresh()
	if r.ranking == nil {
		return 1
	}
	return r.ranking.Rank(leaf, fairshare.UserOf(pod))
}

// State returns the shared tree and ranking as of now.
func (r *ranker) State() (*fairshare.Tree, *fairshare.Ranking, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
	return r.tree, r.ranking, r.err
}

// Fresh returns a private tree as of now.
func (r *ranker) Fresh() (*fairshare.Tree, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, err := r.build(r.now())
	return t, err
}

// refresh recomputes the state if something changed or it is older than maxAge. Callers hold mu.
func (r *ranker) refresh() {
	now := r.now()
	if !r.dirty && now.Sub(r.computed) < maxAge {
		return
	}
	r.tree, r.err = r.build(now)
	r.ranking = nil
	if r.tree != nil {
		r.ranking = r.tree.Rank()
	}
	r.dirty, r.computed = false, now
}

// build makes the tree with live usage, decayed usage projected to now, targets and caps. Callers hold mu.
func (r *ranker) build(now time.Time) (*fairshare.Tree, error) {
	items := make([]kubehtcv1alpha1.Queue, 0, len(r.queues))
	for _, q := range r.queues {
		items = append(items, *q)
	}
	t, _, err := fairshare.Build(items)
	if err != nil {
		return nil, err
	}
	free := make(map[v1.ResourceName]float64, len(r.capacity))
	for k, v := range r.capacity {
		free[k] = v
	}
	for k, sums := range r.byUser {
		if leaf := r.leafOf[k.namespace]; leaf != "" && t.AddUsageValues(leaf, k.user, sums.values, sums.charge, 0) {
			continue
		}
		for res, v := range sums.values {
			free[res] -= v
		}
	}
	for res, v := range free {
		free[res] = max(v, 0)
	}
	for _, n := range t.Nodes() {
		project(t.Policy.HalfLife, n, &r.queues[n.Name].Status, now)
	}
	t.Divide(t.Policy.Charge(toList(free)))
	return t, nil
}

// project sets n's and its users' decayed usage: the status value decayed from its time to now with the
// live usage. Without status yet (no controller), the live usage stands in.
func project(halfLife time.Duration, n *fairshare.Node, st *kubehtcv1alpha1.QueueStatus, now time.Time) {
	if st.LastAccountingTime == nil || st.DecayedUsage == nil {
		n.Decayed = n.Usage
		for _, u := range n.Users {
			u.Decayed = u.Usage
		}
		return
	}
	dt := now.Sub(st.LastAccountingTime.Time)
	n.Decayed = fairshare.Decay(st.DecayedUsage.AsApproximateFloat64(), n.Usage, dt, halfLife)
	if !n.IsLeaf() {
		return
	}
	for _, su := range st.Users {
		if n.Users[su.Name] == nil {
			n.Users[su.Name] = &fairshare.User{Name: su.Name}
		}
	}
	prev := make(map[string]float64, len(st.Users))
	for _, su := range st.Users {
		prev[su.Name] = su.DecayedUsage.AsApproximateFloat64()
	}
	for name, u := range n.Users {
		u.Decayed = fairshare.Decay(prev[name], u.Usage, dt, halfLife)
	}
}

// toList turns numbers back into a ResourceList for Policy.Charge (milli precision suffices).
func toList(m map[v1.ResourceName]float64) v1.ResourceList {
	out := make(v1.ResourceList, len(m))
	for k, v := range m {
		out[k] = *resource.NewMilliQuantity(int64(v*1000+0.5), resource.DecimalSI)
	}
	return out
}
