package gangcontroller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"
)

// ReasonGangPreempted is the reason of the Event recorded on a PodGroup whose gang was evicted because the
// scheduler preempted one of its members.
const ReasonGangPreempted = "GangPreempted"

// preemption is one member the scheduler marked for preemption: the cause of a gang eviction.
type preemption struct {
	pod types.UID
	// name of the preempted member.
	name string
	// at is when the member was marked (the condition's transition time).
	at time.Time
}

// preemptionOf returns the scheduler's preemption mark on pod, if it has one.
func preemptionOf(pod *corev1.Pod) (preemption, bool) {
	for _, c := range pod.Status.Conditions {
		if c.Type != corev1.DisruptionTarget || c.Status != corev1.ConditionTrue || c.Reason != corev1.PodReasonPreemptionByScheduler {
			continue
		}
		at := c.LastTransitionTime.Time
		if at.IsZero() {
			// Without a time, members bound until now were bound when it was marked.
			at = time.Now()
		}
		return preemption{pod: pod.UID, name: pod.Name, at: at}, true
	}
	return preemption{}, false
}

// eviction is one member to evict and the preemption that causes it.
type eviction struct {
	pod   *corev1.Pod
	cause preemption
}

// evictions returns the members of a gang to evict because of the preemptions: every member bound no later
// than a preemption's time that has not finished and is not being deleted, with its earliest cause, in name
// order.
func evictions(members []corev1.Pod, preemptions []preemption) []eviction {
	if len(preemptions) == 0 {
		return nil
	}
	causes := slices.Clone(preemptions)
	slices.SortFunc(causes, func(a, b preemption) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	var out []eviction
	for i := range members {
		p := &members[i]
		if p.Spec.NodeName == "" || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		bound := boundAt(p)
		for _, c := range causes {
			// API times have second granularity: a member bound in the second of the mark counts as bound
			// before it.
			if !bound.After(c.at) {
				out = append(out, eviction{pod: p, cause: c})
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b eviction) int { return strings.Compare(a.pod.Name, b.pod.Name) })
	return out
}

// boundAt returns when pod was bound: its PodScheduled condition's time, else its creation time.
func boundAt(pod *corev1.Pod) time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	return pod.CreationTimestamp.Time
}

// preemptionLog remembers preempted members seen in watch events, per PodGroup, until their gang's eviction
// is complete: a victim may be gone from the cache by the time its PodGroup is reconciled.
type preemptionLog struct {
	mu   sync.Mutex
	seen map[types.NamespacedName]map[types.UID]preemption
}

func (l *preemptionLog) add(pg types.NamespacedName, p preemption) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[types.NamespacedName]map[types.UID]preemption{}
	}
	if l.seen[pg] == nil {
		l.seen[pg] = map[types.UID]preemption{}
	}
	l.seen[pg][p.pod] = p
}

func (l *preemptionLog) get(pg types.NamespacedName) []preemption {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]preemption, 0, len(l.seen[pg]))
	for _, p := range l.seen[pg] {
		out = append(out, p)
	}
	return out
}

// done forgets the preemptions of pg that were handled (later ones stay).
func (l *preemptionLog) done(pg types.NamespacedName, handled []preemption) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range handled {
		delete(l.seen[pg], p.pod)
	}
	if len(l.seen[pg]) == 0 {
		delete(l.seen, pg)
	}
}

// completeEviction evicts the rest of pg's gang when the scheduler preempted one of its members.
func (r *Reconciler) completeEviction(ctx context.Context, pg *schedv1alpha1.PodGroup, members []corev1.Pod) error {
	key := client.ObjectKeyFromObject(pg)
	logged := r.preempted.get(key)
	causes := slices.Clone(logged)
	for i := range members {
		if p, ok := preemptionOf(&members[i]); ok {
			causes = append(causes, p)
		}
	}
	todo := evictions(members, causes)
	if len(todo) == 0 {
		r.preempted.done(key, logged)
		return nil
	}
	logger := klog.FromContext(ctx)
	var evicted []string
	for _, e := range todo {
		if err := r.evict(ctx, pg, e); err != nil {
			if len(evicted) > 0 {
				r.recordGangPreempted(pg, todo[0].cause.name, evicted)
			}
			return fmt.Errorf("evicting member %s of gang %s: %w", e.pod.Name, pg.Name, err)
		}
		evicted = append(evicted, e.pod.Name)
	}
	logger.V(1).Info("Evicted the rest of a preempted gang", "podGroup", klog.KObj(pg), "preempted", todo[0].cause.name, "evicted", evicted)
	r.recordGangPreempted(pg, todo[0].cause.name, evicted)
	r.preempted.done(key, logged)
	return nil
}

func (r *Reconciler) recordGangPreempted(pg *schedv1alpha1.PodGroup, victim string, evicted []string) {
	r.Recorder.Eventf(pg, nil, corev1.EventTypeWarning, ReasonGangPreempted, "Evict",
		"member %s was preempted: evicting the %d other bound members of the gang (%s)", victim, len(evicted), strings.Join(evicted, ", "))
}

// evict marks e.pod as a preemption victim, as the scheduler marks the member it preempted, then deletes it.
func (r *Reconciler) evict(ctx context.Context, pg *schedv1alpha1.PodGroup, e eviction) error {
	pod := e.pod
	if _, marked := preemptionOf(pod); !marked {
		orig := pod.DeepCopy()
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
			Type:               corev1.DisruptionTarget,
			Status:             corev1.ConditionTrue,
			Reason:             corev1.PodReasonPreemptionByScheduler,
			Message:            fmt.Sprintf("gang %s: member %s was preempted", pg.Name, e.cause.name),
			LastTransitionTime: metav1.Now(),
		})
		if err := r.Status().Patch(ctx, pod, client.StrategicMergeFrom(orig)); err != nil {
			return client.IgnoreNotFound(err)
		}
	}
	return client.IgnoreNotFound(r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}))
}
