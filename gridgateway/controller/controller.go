// Package controller is the GridJob controller: it creates each GridJob's Pod once the job's inputs and
// credential are there, keeps the GridJob's status (ARC state, pod, node, exit code, times) in step with
// the Pod, and kills the Pod when the job is cancelled.
package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"time"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// Condition types of a GridJob.
const (
	// ConditionInputsReady is True once every expected input was uploaded and the credential exists.
	ConditionInputsReady = "InputsReady"
	// ConditionPodCreated is True once the job's Pod was created.
	ConditionPodCreated = "PodCreated"
)

// credentialPoll is how often a job waiting for its credential Secret looks again.
const credentialPoll = 2 * time.Second

// Options configure the controller.
type Options struct {
	// Pod shapes the Pods (scheduler, CVMFS volumes, simulation).
	Pod translate.PodOptions
	// MaxConcurrentReconciles; 0 means 8.
	MaxConcurrentReconciles int
}

// Reconciler reconciles GridJobs.
type Reconciler struct {
	client.Client
	// APIReader reads Secrets directly from the API server, so that the manager does not cache every Secret
	// of the cluster.
	APIReader client.Reader
	Options   Options
}

// SetupWithManager registers the controller: it watches GridJobs and the Pods and ConfigMaps they own.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	n := r.Options.MaxConcurrentReconciles
	if n == 0 {
		n = 8
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("gridjob").
		For(&kubehtcv1alpha1.GridJob{}).
		Owns(&corev1.Pod{}).
		Owns(&corev1.ConfigMap{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: n}).
		Complete(r)
}

// Reconcile moves one GridJob along: ACCEPTING (waiting for inputs) → SUBMITTING (Pod created) → the
// state of its Pod; cancel → KILLING → KILLED.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := klog.FromContext(ctx)
	var gj kubehtcv1alpha1.GridJob
	if err := r.Get(ctx, req.NamespacedName, &gj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if gj.DeletionTimestamp != nil {
		return ctrl.Result{}, nil // the garbage collector removes the Pod, Secret and ConfigMap
	}
	st := gj.Status.DeepCopy()
	if st.State == "" {
		st.State = kubehtcv1alpha1.StateAccepting
		st.SubmitTime = ptrTime(gj.CreationTimestamp)
	}
	st.ObservedGeneration = gj.Generation
	var result ctrl.Result

	var pod corev1.Pod
	podKey := types.NamespacedName{Namespace: gj.Namespace, Name: translate.PodName(&gj)}
	err := r.Get(ctx, podKey, &pod)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	podExists := err == nil && metav1.IsControlledBy(&pod, &gj)
	if err == nil && !podExists {
		return ctrl.Result{}, fmt.Errorf("pod %s exists and is not controlled by GridJob %s", podKey, gj.Name)
	}

	switch {
	case gj.Spec.Cancel && !st.State.Terminal():
		if podExists {
			if pod.DeletionTimestamp == nil {
				if err := r.Delete(ctx, &pod, client.Preconditions{UID: &pod.UID}); client.IgnoreNotFound(err) != nil {
					return ctrl.Result{}, err
				}
				logger.V(1).Info("Cancelled grid job: deleting its pod", "gridjob", klog.KObj(&gj), "pod", klog.KObj(&pod))
			}
			r.setState(st, kubehtcv1alpha1.StateKilling, translate.ReasonCancelled, "deleting the pod on request")
		} else {
			r.setState(st, kubehtcv1alpha1.StateKilled, translate.ReasonCancelled, "cancelled on request")
			st.EndTime = ptrTime(metav1.Now())
		}
	case st.State.Terminal():
		// Nothing changes a finished job.
	case podExists:
		r.observe(st, &pod)
		if st.State == kubehtcv1alpha1.StateFailed && pod.Status.Phase == corev1.PodPending && pod.DeletionTimestamp == nil {
			// An image or container-config failure: the Pod would wait forever holding its resources.
			if err := r.Delete(ctx, &pod, client.Preconditions{UID: &pod.UID}); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, err
			}
		}
	case st.PodName != "":
		// The Pod existed and is gone without a cancel (evicted, deleted by someone else) — unless the cache
		// has not seen the Pod this controller just created: ask the API server before declaring it lost.
		if err := r.APIReader.Get(ctx, podKey, &corev1.Pod{}); err == nil {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		} else if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		r.setState(st, kubehtcv1alpha1.StateFailed, translate.ReasonPodLost, "the job's pod disappeared")
		st.EndTime = ptrTime(metav1.Now())
	default:
		ready, why, err := r.inputsReady(ctx, &gj)
		if err != nil {
			return ctrl.Result{}, err
		}
		if !ready {
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: ConditionInputsReady, Status: metav1.ConditionFalse, Reason: "Waiting", Message: why, ObservedGeneration: gj.Generation})
			// Uploads change the owned ConfigMap (a watch event); the credential Secret is not watched.
			result.RequeueAfter = credentialPoll
			break
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: ConditionInputsReady, Status: metav1.ConditionTrue, Reason: "Ready", ObservedGeneration: gj.Generation})
		if err := r.createPod(ctx, &gj); err != nil {
			if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || errors.Is(err, translate.ErrInvalid) {
				r.setState(st, kubehtcv1alpha1.StateFailed, "PodRejected", err.Error())
				st.EndTime = ptrTime(metav1.Now())
				break
			}
			return ctrl.Result{}, err
		}
		st.PodName = podKey.Name
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: ConditionPodCreated, Status: metav1.ConditionTrue, Reason: "Created", ObservedGeneration: gj.Generation})
		r.setState(st, kubehtcv1alpha1.StateSubmitting, "", "")
	}
	if equality.Semantic.DeepEqual(st, &gj.Status) {
		return result, nil
	}
	if st.State != gj.Status.State {
		logger.V(1).Info("Grid job changed state", "gridjob", klog.KObj(&gj), "from", gj.Status.State, "to", st.State, "reason", st.FailureReason)
	}
	gj.Status = *st
	return result, r.Status().Update(ctx, &gj)
}

// setState moves the status to s unless that would go backwards (a stale cache) or leave a terminal state.
func (r *Reconciler) setState(st *kubehtcv1alpha1.GridJobStatus, s kubehtcv1alpha1.GridJobState, reason, msg string) {
	if st.State.Terminal() || translate.StateRank(s) < translate.StateRank(st.State) {
		return
	}
	st.State, st.FailureReason, st.Message = s, reason, msg
}

// observe copies what the Pod says into the status.
func (r *Reconciler) observe(st *kubehtcv1alpha1.GridJobStatus, pod *corev1.Pod) {
	o := translate.StateFromPod(pod)
	if translate.StateRank(o.State) < translate.StateRank(st.State) || st.State.Terminal() {
		return
	}
	st.State, st.FailureReason, st.Message = o.State, o.Reason, o.Message
	st.PodName = pod.Name
	if o.Node != "" {
		st.Node = o.Node
	}
	if o.ExitCode != nil {
		st.ExitCode = o.ExitCode
	}
	if o.Start != nil && st.StartTime == nil {
		st.StartTime = o.Start
	}
	if st.State.Terminal() && st.EndTime == nil {
		st.EndTime = o.End
		if st.EndTime == nil {
			st.EndTime = ptrTime(metav1.Now())
		}
	}
}

// inputsReady reports whether every expected input was uploaded and the credential Secret exists.
func (r *Reconciler) inputsReady(ctx context.Context, gj *kubehtcv1alpha1.GridJob) (bool, string, error) {
	if name := gj.Spec.CredentialSecretName; name != "" {
		var s corev1.Secret
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: gj.Namespace, Name: name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return false, "waiting for the credential secret " + name, nil
			}
			return false, "", err
		}
	}
	if translate.SessionStaged(gj) {
		// The ARC REST gateway stages inputs in its session store and says when all have arrived.
		if gj.Annotations[translate.SessionInputsAnnotation] != translate.SessionInputsReady {
			return false, fmt.Sprintf("waiting for inputs %v in the session directory", gj.Spec.Description.Inputs), nil
		}
		return true, "", nil
	}
	if len(gj.Spec.Description.Inputs) == 0 {
		return true, "", nil
	}
	var cm corev1.ConfigMap
	err := r.Get(ctx, types.NamespacedName{Namespace: gj.Namespace, Name: translate.InputsConfigMapName(gj.Name)}, &cm)
	if apierrors.IsNotFound(err) {
		return false, fmt.Sprintf("waiting for %d inputs", len(gj.Spec.Description.Inputs)), nil
	}
	if err != nil {
		return false, "", err
	}
	var missing []string
	for _, in := range gj.Spec.Description.Inputs {
		if _, ok := cm.BinaryData[in]; !ok {
			missing = append(missing, in)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return false, fmt.Sprintf("waiting for inputs %v", missing), nil
	}
	return true, "", nil
}

func (r *Reconciler) createPod(ctx context.Context, gj *kubehtcv1alpha1.GridJob) error {
	pod, err := translate.Pod(gj, r.Options.Pod)
	if err != nil {
		return err
	}
	if err := controllerutil.SetControllerReference(gj, pod, r.Scheme()); err != nil {
		return err
	}
	err = r.Create(ctx, pod)
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err == nil {
		klog.FromContext(ctx).V(2).Info("Created pod for grid job", "gridjob", klog.KObj(gj), "pod", klog.KObj(pod))
	}
	return err
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }
