package gangcontroller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"
)

// Name is the controller's name, in logs and as the reporting controller of its Events.
const Name = "kubehtc-podgroup"

// Event reasons of phase changes, recorded on the PodGroup.
const (
	ReasonPending    = "GangPending"
	ReasonScheduling = "GangScheduling"
	ReasonRunning    = "GangRunning"
	ReasonFinished   = "GangFinished"
	ReasonFailed     = "GangFailed"
)

// Reconciler keeps PodGroup status true to the member pods and completes gang evictions.
type Reconciler struct {
	client.Client
	// Recorder records Events on PodGroups.
	Recorder events.EventRecorder
	// MaxConcurrentReconciles; 0 means 4.
	MaxConcurrentReconciles int

	preempted preemptionLog
	phases    phaseGauge
}

// SetupWithManager registers the controller: it watches PodGroups and the pods that carry the PodGroup label.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	n := r.MaxConcurrentReconciles
	if n == 0 {
		n = 4
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("podgroup").
		For(&schedv1alpha1.PodGroup{}).
		Watches(&corev1.Pod{}, handler.Funcs{
			CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				enqueue(q, e.Object)
			},
			UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.notePreemption(e.ObjectNew)
				enqueue(q, e.ObjectOld)
				enqueue(q, e.ObjectNew)
			},
			DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.notePreemption(e.Object)
				enqueue(q, e.Object)
			},
		}).
		WithOptions(controller.Options{MaxConcurrentReconciles: n}).
		Complete(r)
}

// podGroupOf returns the PodGroup obj (a pod) belongs to.
func podGroupOf(obj client.Object) (types.NamespacedName, bool) {
	name := obj.GetLabels()[schedv1alpha1.PodGroupLabel]
	if name == "" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}, true
}

func enqueue(q workqueue.TypedRateLimitingInterface[reconcile.Request], obj client.Object) {
	if key, ok := podGroupOf(obj); ok {
		q.Add(reconcile.Request{NamespacedName: key})
	}
}

// notePreemption logs a member the scheduler marked for preemption, so that its gang's eviction completes
// even when the member is gone before the reconcile.
func (r *Reconciler) notePreemption(obj client.Object) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return
	}
	key, ok := podGroupOf(pod)
	if !ok {
		return
	}
	if p, ok := preemptionOf(pod); ok {
		r.preempted.add(key, p)
	}
}

// Reconcile completes a gang eviction if one of the PodGroup's members was preempted, then writes the
// PodGroup's status if its members changed it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var pg schedv1alpha1.PodGroup
	if err := r.Get(ctx, req.NamespacedName, &pg); err != nil {
		if apierrors.IsNotFound(err) {
			r.phases.forget(req.NamespacedName)
			r.preempted.done(req.NamespacedName, r.preempted.get(req.NamespacedName))
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(pg.Namespace), client.MatchingLabels{schedv1alpha1.PodGroupLabel: pg.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the members of %s: %w", req.NamespacedName, err)
	}
	if err := r.completeEviction(ctx, &pg, pods.Items); err != nil {
		return ctrl.Result{}, err
	}

	st := Status(&pg, pods.Items)
	r.phases.set(req.NamespacedName, st.Phase)
	if equality.Semantic.DeepEqual(st, pg.Status) {
		return ctrl.Result{}, nil
	}
	orig := pg.DeepCopy()
	pg.Status = st
	if err := r.Status().Patch(ctx, &pg, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			// The PodGroup changed since the cache saw it; its watch event brings it back here.
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("updating the status of %s: %w", req.NamespacedName, err)
	}
	if st.Phase != orig.Status.Phase {
		klog.FromContext(ctx).V(1).Info("PodGroup changed phase", "podGroup", klog.KObj(&pg), "from", orig.Status.Phase, "to", st.Phase,
			"running", st.Running, "succeeded", st.Succeeded, "failed", st.Failed, "minMember", pg.Spec.MinMember)
		r.recordPhase(&pg, orig.Status.Phase)
	}
	return ctrl.Result{}, nil
}

// recordPhase records pg's new phase as an Event (none for a new PodGroup's first Pending).
func (r *Reconciler) recordPhase(pg *schedv1alpha1.PodGroup, from schedv1alpha1.PodGroupPhase) {
	st := &pg.Status
	m := max(pg.Spec.MinMember, 1)
	var reason, note string
	switch st.Phase {
	case schedv1alpha1.PodGroupPending:
		if from == "" {
			return
		}
		reason, note = ReasonPending, fmt.Sprintf("fewer than %d members are bound", m)
	case schedv1alpha1.PodGroupScheduling:
		reason, note = ReasonScheduling, fmt.Sprintf("at least %d members are bound, %d running", m, st.Running)
	case schedv1alpha1.PodGroupRunning:
		reason, note = ReasonRunning, fmt.Sprintf("%d members running, %d succeeded (minMember %d)", st.Running, st.Succeeded, m)
	case schedv1alpha1.PodGroupFinished:
		reason, note = ReasonFinished, fmt.Sprintf("%d members succeeded (minMember %d)", st.Succeeded, m)
	case schedv1alpha1.PodGroupFailed:
		r.Recorder.Eventf(pg, nil, corev1.EventTypeWarning, ReasonFailed, "UpdatePhase",
			"%d members failed: fewer than %d can still succeed", st.Failed, m)
		return
	default:
		return
	}
	r.Recorder.Eventf(pg, nil, corev1.EventTypeNormal, reason, "UpdatePhase", "%s", note)
}
