package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/quota/fairshare"
)

// retryInterval is the wait after a failed accounting or while there is no root Queue.
const retryInterval = 10 * time.Second

// Options configure the quota controller.
type Options struct {
	// Disabled turns the controller off (Queue status is then not maintained and the scheduler ranks on live
	// usage alone).
	Disabled bool
}

// Accountant is the quota controller. It runs as a manager Runnable on the elected leader.
type Accountant struct {
	// Client reads Queues, Pods, Namespaces and Nodes (from the manager's cache) and writes Queue status.
	Client client.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SetupWithManager adds the accountant to mgr.
func (a *Accountant) SetupWithManager(mgr ctrl.Manager) error { return mgr.Add(a) }

// NeedLeaderElection makes only the elected replica account (two would decay twice per interval).
func (a *Accountant) NeedLeaderElection() bool { return true }

// Start accounts every interval until ctx ends.
func (a *Accountant) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithName("quota")
	ctx = klog.NewContext(ctx, logger)
	for {
		next, err := a.Account(ctx)
		if err != nil {
			accountingsTotal.WithLabelValues("error").Inc()
			logger.Error(err, "accounting queues")
			next = retryInterval
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(next):
		}
	}
}

func (a *Accountant) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Account runs one accounting interval and returns the time until the next.
func (a *Accountant) Account(ctx context.Context) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	var queues kubehtcv1alpha1.QueueList
	if err := a.Client.List(ctx, &queues); err != nil {
		return 0, fmt.Errorf("listing queues: %w", err)
	}
	tree, skipped, err := fairshare.Build(queues.Items)
	if err != nil {
		logger.V(2).Info("no queue tree to account", "reason", err.Error())
		accountingsTotal.WithLabelValues("no-tree").Inc()
		return retryInterval, nil
	}
	in, err := a.gather(ctx, tree)
	if err != nil {
		return 0, err
	}
	now := a.now()
	byName := make(map[string]*kubehtcv1alpha1.Queue, len(queues.Items))
	for i := range queues.Items {
		byName[queues.Items[i].Name] = &queues.Items[i]
	}
	for _, n := range tree.Nodes() {
		n.DecayFrom(&byName[n.Name].Status, now, tree.Policy.HalfLife)
	}
	tree.Divide(in.capacity)
	ranking := tree.Rank()
	updateMetrics(tree, in)

	var errs []error
	for i := range queues.Items {
		q := &queues.Items[i]
		st := q.Status.DeepCopy()
		if err := skipped[q.Name]; err != nil {
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kubehtcv1alpha1.QueueConditionAccounted,
				Status: metav1.ConditionFalse, Reason: "NotInTree", Message: err.Error(), ObservedGeneration: q.Generation})
		} else {
			fillStatus(st, tree.Node(q.Name), in, ranking, now)
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kubehtcv1alpha1.QueueConditionAccounted,
				Status: metav1.ConditionTrue, Reason: "Accounted", Message: "usage accounted", ObservedGeneration: q.Generation})
		}
		if equality.Semantic.DeepEqual(st, &q.Status) {
			continue
		}
		orig := q.DeepCopy()
		q.Status = *st
		if err := a.Client.Status().Patch(ctx, q, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("queue %s: writing status: %w", q.Name, err))
		}
	}
	if len(errs) > 0 {
		return 0, errs[0]
	}
	accountingsTotal.WithLabelValues("ok").Inc()
	logger.V(2).Info("accounted queues", "queues", len(queues.Items), "capacity", in.capacity, "outsidePods", in.outsidePods)
	return tree.Policy.AccountingInterval, nil
}

// inputs are what one interval observed besides the tree's usage.
type inputs struct {
	capacity    float64
	outsidePods int
	requests    map[string]corev1.ResourceList // per queue, subtree sums
	running     map[string]int32
	pending     map[string]int32
	runningUser map[string]map[string]int32 // leaf → user → pods
}

// gather adds the usage of every running pod of a queue to the tree and counts the rest: pods outside any
// queue reduce the capacity that queues divide.
func (a *Accountant) gather(ctx context.Context, tree *fairshare.Tree) (*inputs, error) {
	var nss corev1.NamespaceList
	if err := a.Client.List(ctx, &nss); err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	leafOf := make(map[string]string, len(nss.Items))
	for i := range nss.Items {
		if q := fairshare.QueueOf(&nss.Items[i]); q != "" {
			leafOf[nss.Items[i].Name] = q
		}
	}
	var nodes corev1.NodeList
	if err := a.Client.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	free := corev1.ResourceList{}
	// Cordoned nodes count: their pods still run, and cordoning for maintenance should not shift targets.
	for i := range nodes.Items {
		addTo(free, nodes.Items[i].Status.Allocatable, 1)
	}
	var pods corev1.PodList
	if err := a.Client.List(ctx, &pods); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	in := &inputs{requests: map[string]corev1.ResourceList{}, running: map[string]int32{}, pending: map[string]int32{},
		runningUser: map[string]map[string]int32{}}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		leaf := tree.Node(leafOf[pod.Namespace])
		inQueue := leaf != nil && leaf.IsLeaf() && leaf.Parent != nil
		if !fairshare.Holds(pod) {
			if inQueue {
				for x := leaf; x != nil; x = x.Parent {
					in.pending[x.Name]++
				}
			}
			continue
		}
		req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
		if !inQueue {
			addTo(free, req, -1)
			in.outsidePods++
			continue
		}
		user := fairshare.UserOf(pod)
		tree.AddUsage(leaf.Name, user, req, tree.Policy.Charge(req), 0)
		if in.runningUser[leaf.Name] == nil {
			in.runningUser[leaf.Name] = map[string]int32{}
		}
		in.runningUser[leaf.Name][user]++
		for x := leaf; x != nil; x = x.Parent {
			in.running[x.Name]++
			if in.requests[x.Name] == nil {
				in.requests[x.Name] = corev1.ResourceList{}
			}
			addTo(in.requests[x.Name], req, 1)
		}
	}
	for r, q := range free {
		if q.Sign() < 0 {
			free[r] = resource.Quantity{}
		}
	}
	in.capacity = tree.Policy.Charge(free)
	return in, nil
}

// addTo adds sign·b to a.
func addTo(a, b corev1.ResourceList, sign int) {
	for r, q := range b {
		sum := a[r]
		if sign < 0 {
			sum.Sub(q)
		} else {
			sum.Add(q)
		}
		a[r] = sum
	}
}

// fillStatus writes the interval's figures for n into st.
func fillStatus(st *kubehtcv1alpha1.QueueStatus, n *fairshare.Node, in *inputs, r *fairshare.Ranking, now time.Time) {
	fairshare.FillStatus(st, n, r, in.runningUser[n.Name], now)
	st.Usage = in.requests[n.Name]
	st.RunningPods = in.running[n.Name]
	st.PendingPods = in.pending[n.Name]
}

func updateMetrics(tree *fairshare.Tree, in *inputs) {
	for _, g := range []*prometheus.GaugeVec{usageGauge, decayedGauge, shareGauge, targetGauge, pendingGauge} {
		g.Reset()
	}
	capacityGauge.Set(in.capacity)
	for _, n := range tree.Nodes() {
		usageGauge.WithLabelValues(n.Name).Set(n.Usage)
		decayedGauge.WithLabelValues(n.Name).Set(n.Decayed)
		shareGauge.WithLabelValues(n.Name).Set(n.Share)
		targetGauge.WithLabelValues(n.Name).Set(n.Target)
		pendingGauge.WithLabelValues(n.Name).Set(float64(in.pending[n.Name]))
	}
}
