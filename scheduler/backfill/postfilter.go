package backfill

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/kubehtc/kubehtc/scheduler/internal/podgroup"
	"github.com/kubehtc/kubehtc/scheduler/internal/reservation"
)

// PostFilter gives a big job that cannot be placed a reservation, or moves the one it holds: the earliest
// time its members fit and the nodes. It never makes room itself, so it returns Unschedulable and the next
// PostFilter plugins (Gang's release, preemption, reclaim) still run.
func (pl *Backfill) PostFilter(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, statuses fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	req := requestOf(pod)
	if !pl.isBig(pod, req) {
		return nil, fwk.NewStatus(fwk.Unschedulable, "not a big job: no reservation")
	}
	all, err := pl.handle.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return nil, fwk.AsStatus(fmt.Errorf("listing nodes: %w", err))
	}
	if len(all) > 0 {
		// Over its queue's limit, the job would not start even on free nodes.
		if st := statuses.Get(all[0].Node().Name); st != nil && st.Plugin() == fairShareName {
			return nil, fwk.NewStatus(fwk.Unschedulable, "rejected by fair share: no reservation")
		}
	}
	key := jobKey(pod)
	now := pl.now()
	pl.mu.Lock()
	if !pl.set.Admit(key, func(other string) bool { return pl.before(pod, pl.holders[other]) }) {
		pl.mu.Unlock()
		return nil, fwk.NewStatus(fwk.Unschedulable, "reservations are held by jobs ranked first")
	}
	old := pl.set.Get(key)
	if old != nil && pl.computed[key].Equal(now) {
		// Another member of the same gang failed at the same instant (a simulation's pass): the plan stands.
		pl.mu.Unlock()
		return nil, fwk.NewStatus(fwk.Unschedulable, describe(old.Plan, now))
	}
	r, ok := pl.planLocked(ctx, key, pod, req, all, now)
	pl.computed[key] = now
	if !ok {
		if old != nil {
			pl.set.Delete(key)
			delete(pl.holders, key)
			delete(pl.computed, key)
		}
		n := pl.set.Len()
		pl.mu.Unlock()
		reservationsGauge.Set(float64(n))
		klog.FromContext(ctx).V(4).Info("No reservation possible: the capacity is held by pods without walltime", "job", key)
		return nil, fwk.NewStatus(fwk.Unschedulable, "no reservation possible: the capacity is held by pods without walltime")
	}
	pl.holders[key] = pod
	dropped := pl.set.Put(r, func(a, b string) bool { return pl.before(pl.holders[a], pl.holders[b]) })
	if dropped != nil {
		delete(pl.holders, dropped.Key)
		delete(pl.computed, dropped.Key)
	}
	n := pl.set.Len()
	pl.mu.Unlock()
	reservationsGauge.Set(float64(n))
	if dropped == r {
		return nil, fwk.NewStatus(fwk.Unschedulable, "reservations are held by jobs ranked first")
	}
	msg := describe(r.Plan, now)
	if old == nil || !samePlan(old.Plan, r.Plan) {
		if old == nil {
			reservationsCreated.Inc()
		}
		if dropped != nil {
			klog.FromContext(ctx).V(2).Info("Reservation dropped for a job ranked first", "job", dropped.Key, "by", key)
		}
		klog.FromContext(ctx).V(2).Info("Reserved", "job", key, "pod", klog.KObj(pod), "start", r.Plan.Start, "nodes", len(r.Plan.Nodes), "members", r.Job.Count)
		pl.announce(ctx, pod, msg)
	}
	return nil, fwk.NewStatus(fwk.Unschedulable, msg)
}

// planLocked computes the job's reservation over the eligible nodes, around the other reservations.
func (pl *Backfill) planLocked(ctx context.Context, key string, pod *v1.Pod, req reservation.Resources, all []fwk.NodeInfo, now time.Time) (*reservation.Reservation, bool) {
	job, _ := pl.job(pod, req)
	logger := klog.FromContext(ctx)
	aff := nodeaffinity.GetRequiredNodeAffinity(pod)
	nodes := make([]reservation.Node, 0, len(all))
	for _, ni := range all {
		if !eligible(logger, pod, aff, ni, job.Member) {
			continue
		}
		n := pl.nodeModel(ni)
		n.Held = pl.set.Held(n.Name, key)
		nodes = append(nodes, *n)
	}
	plan, ok := reservation.Earliest(now, nodes, job)
	if !ok {
		return nil, false
	}
	return &reservation.Reservation{Key: key, Job: job, Plan: plan, Since: now}, true
}

// sweepLocked releases the reservations of jobs that started or are gone, and recomputes those that lost a
// node.
func (pl *Backfill) sweepLocked(ctx context.Context, now time.Time) {
	logger := klog.FromContext(ctx)
	lister := pl.handle.SnapshotSharedLister().NodeInfos()
	for _, r := range slices.Clone(pl.set.All()) {
		holder := pl.holders[r.Key]
		if reason := pl.gone(holder); reason != "" {
			pl.set.Delete(r.Key)
			delete(pl.holders, r.Key)
			delete(pl.computed, r.Key)
			reservationsGauge.Set(float64(pl.set.Len()))
			logger.V(2).Info("Reservation released", "job", r.Key, "reason", reason)
			continue
		}
		lost := slices.ContainsFunc(r.Plan.Nodes, func(a reservation.Assignment) bool {
			_, err := lister.Get(a.Node)
			return err != nil
		})
		if !lost {
			continue
		}
		all, err := lister.List()
		if err != nil {
			continue
		}
		// The job keeps its place in the set while its nodes are recomputed.
		pl.set.Delete(r.Key)
		nr, ok := pl.planLocked(ctx, r.Key, holder, requestOf(holder), all, now)
		if !ok {
			delete(pl.holders, r.Key)
			delete(pl.computed, r.Key)
			reservationsGauge.Set(float64(pl.set.Len()))
			logger.V(2).Info("Reservation released: a reserved node left and no other fits", "job", r.Key)
			continue
		}
		nr.Since = r.Since
		pl.set.Put(nr, func(a, b string) bool { return pl.before(pl.holders[a], pl.holders[b]) })
		logger.V(2).Info("Reservation moved: a reserved node left", "job", r.Key, "start", nr.Plan.Start)
		go pl.announce(context.WithoutCancel(ctx), holder, describe(nr.Plan, now))
	}
}

// gone says why a reservation's job no longer needs it ("" if it still does): it started, or it was deleted.
func (pl *Backfill) gone(holder *v1.Pod) string {
	if holder == nil {
		return "no pod"
	}
	if k, ok := podgroup.Key(holder); ok {
		if pl.groups.Get(k) == nil {
			return "PodGroup deleted"
		}
		members := pl.groups.Members(k)
		if len(members) == 0 {
			return "gang deleted"
		}
		for _, m := range members {
			if m.Spec.NodeName != "" {
				return "gang started"
			}
		}
		return ""
	}
	p, err := pl.pods.Pods(holder.Namespace).Get(holder.Name)
	switch {
	case apierrors.IsNotFound(err):
		return "pod deleted"
	case err != nil:
		return ""
	case p.UID != holder.UID:
		return "pod replaced"
	case p.Spec.NodeName != "":
		return "pod started"
	}
	return ""
}

func samePlan(a, b reservation.Plan) bool {
	return a.Start.Equal(b.Start) && slices.Equal(a.Nodes, b.Nodes)
}

// announce makes a reservation visible: an Event on the pod (and its PodGroup) and the pod's Reserved
// condition.
func (pl *Backfill) announce(ctx context.Context, pod *v1.Pod, msg string) {
	if r := pl.handle.EventRecorder(); r != nil {
		r.Eventf(pod, nil, v1.EventTypeNormal, EventReasonReserved, "Scheduling", "%s", msg)
		if k, ok := podgroup.Key(pod); ok {
			if pg := pl.groups.Get(k); pg != nil {
				ref := pg.DeepCopy()
				ref.APIVersion, ref.Kind = "scheduling.x-k8s.io/v1alpha1", "PodGroup"
				r.Eventf(ref, nil, v1.EventTypeNormal, EventReasonReserved, "Scheduling", "%s", msg)
			}
		}
	}
	cs := pl.handle.ClientSet()
	if cs == nil {
		return
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []v1.PodCondition{{
		Type: ConditionReserved, Status: v1.ConditionTrue, Reason: EventReasonReserved, Message: msg,
		LastTransitionTime: metav1.NewTime(pl.now()),
	}}}})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cs.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).V(2).Info("Could not set the Reserved condition", "pod", klog.KObj(pod), "err", err)
	}
}
