// Package why answers "why is my job pending, and when will it start?" from the cluster's objects alone: the
// pod's PodScheduled condition (the scheduler's last reason), its namespace's fair-share Queue (share, target,
// usage, rank), its position among the queue's pending pods, its gang (PodGroup, members bound, the gang
// plugin's last event) and, where the scheduler reserved capacity for it, the reservation's expected start.
// `kubehtc why` prints an Answer; it reads, never writes.
package why

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// ConditionReserved is the pod condition the scheduler's backfill reservations set (type
// kubehtc.io/Reserved; its message says where and when the job starts). Read only if present.
const ConditionReserved corev1.PodConditionType = "kubehtc.io/Reserved"

var (
	queueResource    = kubehtcv1alpha1.GroupVersion.WithResource("queues")
	gridJobResource  = kubehtcv1alpha1.GroupVersion.WithResource("gridjobs")
	podGroupResource = schema.GroupVersionResource{Group: schedv1alpha1.SchemeGroupVersion.Group, Version: schedv1alpha1.SchemeGroupVersion.Version, Resource: "podgroups"}
)

// Answer is the explanation for one pod, PodGroup or GridJob.
type Answer struct {
	// Object is what was asked about, e.g. "pod ml/train-0".
	Object string `json:"object"`
	// Pod is the pod the answer is about (for a PodGroup its first waiting member; for a GridJob its pod).
	Pod string `json:"pod,omitempty"`
	// State is the pod's state in a few words: "Pending", "Running on node cpu-a-1", "Succeeded".
	State string `json:"state"`
	// Waiting is true while the pod is not bound to a node.
	Waiting bool `json:"waiting"`
	// SchedulerReason is the scheduler's last reason for not placing the pod (PodScheduled=False message).
	SchedulerReason string `json:"schedulerReason,omitempty"`
	// SchedulerReasonTime is when the scheduler last gave it.
	SchedulerReasonTime *metav1.Time `json:"schedulerReasonTime,omitempty"`
	// Queue is the fair-share queue of the pod's namespace; nil outside fair share.
	Queue *Queue `json:"queue,omitempty"`
	// Gang is the pod's PodGroup; nil for a pod outside a gang.
	Gang *Gang `json:"gang,omitempty"`
	// Reservation is the capacity the scheduler reserved for the pod; nil if none.
	Reservation *Reservation `json:"reservation,omitempty"`
	// Notes are further facts in plain words (e.g. a GridJob's state).
	Notes []string `json:"notes,omitempty"`
}

// Queue is the fair-share state of a queue, as the quota controller last computed it.
type Queue struct {
	Name string `json:"name"`
	// Share is the queue's fraction of the capacity ("0.300"); Target its entitlement and Usage its running
	// pods' requests, both in core-equivalents.
	Share  string `json:"share,omitempty"`
	Target string `json:"target,omitempty"`
	Usage  string `json:"usage,omitempty"`
	// DecayedUsage is the usage averaged over the half-life, which ranks the queue.
	DecayedUsage string `json:"decayedUsage,omitempty"`
	// Rank is the queue's place in the fair-share order (1 is served first) of RankOf queues.
	Rank   int32 `json:"rank,omitempty"`
	RankOf int   `json:"rankOf,omitempty"`
	// OverTarget is true when the queue uses more than its target: its pods wait behind queues below theirs.
	OverTarget bool `json:"overTarget"`
	// Running and Pending pods of the queue's subtree.
	Running int32 `json:"running"`
	Pending int32 `json:"pending"`
	// Position is the pod's place among the queue's pending pods (priority, then age; 1 is next), of
	// PendingHere. 0 when the pod is not pending.
	Position    int `json:"position,omitempty"`
	PendingHere int `json:"pendingHere,omitempty"`
}

// Gang is the state of a PodGroup.
type Gang struct {
	Name      string `json:"name"`
	Phase     string `json:"phase,omitempty"`
	MinMember int32  `json:"minMember"`
	// Members that exist, are bound to nodes, and are running.
	Members int `json:"members"`
	Bound   int `json:"bound"`
	Running int `json:"running"`
	// LastEvent is the latest Event on the PodGroup ("GangUnschedulable: gang ml/train needs ...").
	LastEvent string `json:"lastEvent,omitempty"`
}

// Reservation is the scheduler's reservation for the pod (ConditionReserved).
type Reservation struct {
	Message string       `json:"message"`
	Since   *metav1.Time `json:"since,omitempty"`
}

// Clients are what Explain reads with.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// Explain answers for kind ("pod", "podgroup" or "gridjob", singular or plural, short "pg") namespace/name.
func Explain(ctx context.Context, c Clients, kind, namespace, name string) (*Answer, error) {
	switch strings.ToLower(kind) {
	case "pod", "pods", "po":
		pod, err := c.Kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		a := &Answer{Object: "pod " + namespace + "/" + name}
		return a, c.explainPod(ctx, a, pod)
	case "podgroup", "podgroups", "pg":
		return c.explainPodGroup(ctx, namespace, name)
	case "gridjob", "gridjobs", "gj":
		return c.explainGridJob(ctx, namespace, name)
	}
	return nil, fmt.Errorf("kind %q: want pod, podgroup or gridjob", kind)
}

func (c Clients) explainPodGroup(ctx context.Context, namespace, name string) (*Answer, error) {
	a := &Answer{Object: "podgroup " + namespace + "/" + name}
	pods, err := c.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: schedv1alpha1.PodGroupLabel + "=" + name})
	if err != nil {
		return nil, err
	}
	if len(pods.Items) == 0 {
		if _, err := c.Dynamic.Resource(podGroupResource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return nil, err
		}
		gang, err := c.gang(ctx, namespace, name)
		if err != nil {
			return nil, err
		}
		a.Gang, a.State, a.Waiting = gang, "no member pods yet", true
		a.Notes = append(a.Notes, fmt.Sprintf("the gang waits for its pods: none has label %s=%s yet", schedv1alpha1.PodGroupLabel, name))
		return a, nil
	}
	// Explain the oldest unbound member (the one the gang waits on), else the oldest member.
	items := pods.Items
	slices.SortFunc(items, func(x, y corev1.Pod) int { return x.CreationTimestamp.Compare(y.CreationTimestamp.Time) })
	pick := &items[0]
	for i := range items {
		if items[i].Spec.NodeName == "" && items[i].DeletionTimestamp == nil {
			pick = &items[i]
			break
		}
	}
	return a, c.explainPod(ctx, a, pick)
}

func (c Clients) explainGridJob(ctx context.Context, namespace, name string) (*Answer, error) {
	u, err := c.Dynamic.Resource(gridJobResource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var gj kubehtcv1alpha1.GridJob
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &gj); err != nil {
		return nil, fmt.Errorf("gridjob %s/%s: %w", namespace, name, err)
	}
	a := &Answer{Object: "gridjob " + namespace + "/" + name}
	note := fmt.Sprintf("grid job state %s", gj.Status.State)
	if gj.Status.Message != "" {
		note += ": " + gj.Status.Message
	}
	a.Notes = append(a.Notes, note)
	if gj.Status.PodName == "" {
		a.State, a.Waiting = string(gj.Status.State)+" (no pod yet)", true
		return a, nil
	}
	pod, err := c.Kube.CoreV1().Pods(namespace).Get(ctx, gj.Status.PodName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		a.State = string(gj.Status.State) + " (pod " + gj.Status.PodName + " gone)"
		return a, nil
	}
	if err != nil {
		return nil, err
	}
	return a, c.explainPod(ctx, a, pod)
}

func (c Clients) explainPod(ctx context.Context, a *Answer, pod *corev1.Pod) error {
	a.Pod = pod.Namespace + "/" + pod.Name
	a.Waiting = pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil && pod.Status.Phase == corev1.PodPending
	switch {
	case pod.DeletionTimestamp != nil:
		a.State = "being deleted"
	case pod.Spec.NodeName == "":
		a.State = string(pod.Status.Phase) + ", not scheduled"
	default:
		a.State = fmt.Sprintf("%s on node %s", pod.Status.Phase, pod.Spec.NodeName)
	}
	for _, cond := range pod.Status.Conditions {
		switch {
		case cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse:
			a.SchedulerReason, a.SchedulerReasonTime = cond.Message, &cond.LastTransitionTime
			if a.SchedulerReason == "" {
				a.SchedulerReason = cond.Reason
			}
		case cond.Type == ConditionReserved && cond.Status == corev1.ConditionTrue:
			a.Reservation = &Reservation{Message: cond.Message, Since: &cond.LastTransitionTime}
		}
	}
	if a.Waiting && a.SchedulerReason == "" {
		a.Notes = append(a.Notes, fmt.Sprintf("no scheduler has reported on this pod yet (schedulerName %q)", pod.Spec.SchedulerName))
	}
	if g := pod.Labels[schedv1alpha1.PodGroupLabel]; g != "" {
		gang, err := c.gang(ctx, pod.Namespace, g)
		if err != nil {
			return err
		}
		a.Gang = gang
	}
	q, err := c.queue(ctx, pod)
	if err != nil {
		return err
	}
	a.Queue = q
	return nil
}

// gang reads the PodGroup, counts its members and finds its latest Event.
func (c Clients) gang(ctx context.Context, namespace, name string) (*Gang, error) {
	g := &Gang{Name: name}
	u, err := c.Dynamic.Resource(podGroupResource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		g.Phase = "PodGroup missing (members wait until it exists)"
	case err != nil:
		return nil, err
	default:
		var pg schedv1alpha1.PodGroup
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &pg); err != nil {
			return nil, fmt.Errorf("podgroup %s/%s: %w", namespace, name, err)
		}
		g.Phase, g.MinMember = string(pg.Status.Phase), pg.Spec.MinMember
	}
	pods, err := c.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: schedv1alpha1.PodGroupLabel + "=" + name})
	if err != nil {
		return nil, err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			continue
		}
		g.Members++
		if p.Spec.NodeName != "" {
			g.Bound++
		}
		if p.Status.Phase == corev1.PodRunning {
			g.Running++
		}
	}
	events, err := c.Kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: fields.AndSelectors(
		fields.OneTermEqualSelector("involvedObject.kind", "PodGroup"),
		fields.OneTermEqualSelector("involvedObject.name", name)).String()})
	if err != nil {
		return nil, err
	}
	var last *corev1.Event
	for i := range events.Items {
		if e := &events.Items[i]; last == nil || eventTime(e).After(eventTime(last)) {
			last = e
		}
	}
	if last != nil {
		g.LastEvent = last.Reason + ": " + last.Message
	}
	return g, nil
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// queue reads the Queue of the pod's namespace (label kubehtc.io/queue) and the pod's position among the
// queue's pending pods.
func (c Clients) queue(ctx context.Context, pod *corev1.Pod) (*Queue, error) {
	ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, pod.Namespace, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	name := ns.Labels[kubehtcv1alpha1.QueueLabel]
	if name == "" {
		return nil, nil
	}
	q := &Queue{Name: name}
	list, err := c.Dynamic.Resource(queueResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	q.RankOf = len(list.Items)
	for _, u := range list.Items {
		if u.GetName() != name {
			continue
		}
		var queue kubehtcv1alpha1.Queue
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &queue); err != nil {
			return nil, fmt.Errorf("queue %s: %w", name, err)
		}
		st := queue.Status
		q.Share, q.Rank, q.Running, q.Pending = st.Share, st.Rank, st.RunningPods, st.PendingPods
		if st.Target != nil {
			q.Target = st.Target.String()
		}
		if st.UsageCoreEquivalents != nil {
			q.Usage = st.UsageCoreEquivalents.String()
		}
		if st.DecayedUsage != nil {
			q.DecayedUsage = st.DecayedUsage.String()
		}
		q.OverTarget = st.Target != nil && st.UsageCoreEquivalents != nil && st.UsageCoreEquivalents.Cmp(*st.Target) > 0
	}
	if !isPending(pod) {
		return q, nil
	}
	// The queue's pending pods: unbound pods of every namespace of the queue, in the order the scheduler's
	// queue sort uses inside one queue (priority, then age).
	nss, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: kubehtcv1alpha1.QueueLabel + "=" + name})
	if err != nil {
		return nil, err
	}
	var pending []corev1.Pod
	for _, n := range nss.Items {
		pods, err := c.Kube.CoreV1().Pods(n.Name).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=,status.phase=Pending"})
		if err != nil {
			return nil, err
		}
		for _, p := range pods.Items {
			if isPending(&p) {
				pending = append(pending, p)
			}
		}
	}
	slices.SortStableFunc(pending, func(x, y corev1.Pod) int {
		if px, py := priority(&x), priority(&y); px != py {
			return int(py - px)
		}
		if c := x.CreationTimestamp.Compare(y.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(x.Namespace+"/"+x.Name, y.Namespace+"/"+y.Name)
	})
	q.PendingHere = len(pending)
	for i := range pending {
		if pending[i].UID == pod.UID {
			q.Position = i + 1
		}
	}
	return q, nil
}

func isPending(p *corev1.Pod) bool {
	return p.Spec.NodeName == "" && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodPending
}

func priority(p *corev1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}
