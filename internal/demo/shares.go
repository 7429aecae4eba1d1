package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/internal/localcluster"
)

func init() {
	Workloads = append(Workloads, voBacklogs{})
}

// SharePool is the node pool the VO backlogs run on: two 10-core nodes that Run taints so that nothing else
// lands there. The other workloads keep the default pools to themselves, so the backlogs cannot change
// their placement, and the backlogs compete only with each other: what each VO gets of the pool is the fair
// share the scheduler delivers.
const SharePool = "fairshare"

// shareTaint keeps every pod but the VO backlogs off SharePool.
const shareTaint = "demo.kubehtc.io/vo-backlogs"

// NodePools are the nodes of the demo's cluster: localcluster.DefaultNodePools and SharePool. With other
// pools (kubehtc demo --nodes-config) the VO backlogs run only if one of them is named SharePool.
func NodePools() localcluster.NodePoolsConfig {
	p := localcluster.DefaultNodePools()
	p.Pools = append(p.Pools, localcluster.NodePool{Name: SharePool, Count: 2, CPU: "10", Memory: "40Gi", Zone: "zone-b"})
	return p
}

// vo is one virtual organisation of the fair-share part: its leaf Queue, weight and namespace.
type vo struct {
	queue     string
	weight    int32
	namespace string
}

// vos are the VOs of the backlogs, shares 50/30/20.
var vos = []vo{{"atlas", 50, "vo-atlas"}, {"cms", 30, "vo-cms"}, {"lhcb", 20, "vo-lhcb"}}

// The root Queue's policy for the demo. A site keeps usage for a day (the default 24 h half-life); the demo
// lasts seconds, so usage halves every 5 s and the quota controller accounts every second (the least the
// CRD allows). The scheduler ranks queues by the decayed usage of the last accounting, with live usage
// weighted by the time since (scheduler/internal/fairshare), so ranks move little inside an interval and
// the best-ranked VO takes most cores freed in it; a half-life of a few seconds lets the ranking catch up
// within the demo's window. (Measured with 15 s and equal run times: the pool swung between 20/0/0 and
// 0/0/20 and the window ended 10 to 25 points off target in some runs.)
const (
	shareHalfLife           = 5 * time.Second
	shareAccountingInterval = time.Second
)

const (
	// shareRuntime is the run time of one backlog pod (1 core) at Scale.Runtime 1.
	shareRuntime = 4 * time.Second
	// shareWarmup and shareWindow place the measurement window at Scale.Runtime 1: from 8 s after the
	// pass's first submission, for 20 s. The warm-up covers filling the pool, the first accountings and the
	// first pods' run (up to 1.5 × shareRuntime): at the start all VOs have no usage and rank alike.
	shareWarmup = 8 * time.Second
	shareWindow = 20 * time.Second
	// shareCores is the pool's size (NodePools).
	shareCores = 20
	// shareCreators and shareDeleters are how many pods the backlogs create and withdraw at a time.
	shareCreators = 8
	shareDeleters = 16
)

// shareBacklog is how many pods each VO submits at scale s: 30 % more than the largest share (0.5 of 20
// cores) runs from the pass's start to the window's end, so that the pool stays saturated and the scheduler,
// not the submission, decides who runs. Every VO submits as many, so that none runs dry on a FIFO queue
// either. The count is the same at every scale: window and run time scale alike.
//
// All at once, rather than a few pending pods per VO topped up as they start: a pod that did not fit waits
// out a back-off (1 s, doubling to 10 s), and a freed core goes to the best-ranked pod among those whose
// back-off has ended. Submitted together, the VOs' pods back off alike and rank decides; topped up, the VO
// that just started pods has the freshest, first-eligible pods (measured with equal run times and a 15 s
// half-life: 4 to 17 points off with 15 pending per VO, 3 to 8 with 40).
func shareBacklog(s Scale) int {
	_, to := shareWindowOf(s)
	var largest, sum float64
	for _, v := range vos {
		largest = max(largest, float64(v.weight))
		sum += float64(v.weight)
	}
	return int(math.Ceil(1.3*largest/sum*shareCores*to.Seconds()/s.d(shareRuntime).Seconds() - 1e-9))
}

// shareRuntimeOf is the run time of a VO's i-th pod at Scale.Runtime 1: from half to one and a half times
// shareRuntime, so that pods started together end apart and cores free one by one, not a whole pool at
// once (which the best-ranked VO would take whole).
func shareRuntimeOf(i int) time.Duration {
	return shareRuntime/2 + time.Duration(i%5)*shareRuntime/4
}

// shareWindowOf is the measurement window of a pass at scale s, from the pass's first submission.
func shareWindowOf(s Scale) (from, to time.Duration) {
	from = s.d(shareWarmup)
	return from, from + s.d(shareWindow)
}

// voBacklogs are three VOs with shares 50/30/20 (a Queue each under root), each submitting a backlog of
// 1-core pods for SharePool at the start of the pass, more than the pool runs before the measurement window
// ends; then the pods not yet started are withdrawn. Submit creates the Queues and labels the VOs'
// namespaces with them; cleanUp deletes the Queues, so that the next pass starts without usage history.
// Without SharePool it submits nothing.
type voBacklogs struct{}

func (voBacklogs) FollowsSchedulerName() {}
func (voBacklogs) Name() string          { return "VO backlogs" }
func (voBacklogs) Namespaces() []string {
	out := make([]string, len(vos))
	for i, v := range vos {
		out[i] = v.namespace
	}
	return out
}

// prepare taints SharePool's nodes (once, before the first pass).
func (voBacklogs) prepare(ctx context.Context, cs kubernetes.Interface) error {
	nodes, err := sharePoolNodes(ctx, cs)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if hasTaint(&n, shareTaint) {
			continue
		}
		taints := append(n.Spec.Taints, corev1.Taint{Key: shareTaint, Effect: corev1.TaintEffectNoSchedule})
		patch, err := json.Marshal(map[string]any{"spec": map[string]any{"taints": taints}})
		if err != nil {
			return err
		}
		if _, err := cs.CoreV1().Nodes().Patch(ctx, n.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("tainting node %s: %w", n.Name, err)
		}
	}
	return nil
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

func sharePoolNodes(ctx context.Context, cs kubernetes.Interface) ([]corev1.Node, error) {
	l, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: localcluster.PoolLabel + "=" + SharePool})
	if err != nil {
		return nil, fmt.Errorf("listing the nodes of pool %s: %w", SharePool, err)
	}
	return l.Items, nil
}

func (b voBacklogs) Submit(ctx context.Context, cs kubernetes.Interface, s Scale) error {
	start := time.Now()
	nodes, err := sharePoolNodes(ctx, cs)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		klog.FromContext(ctx).Info("No fair-share node pool in this cluster: no VO backlogs", "pool", SharePool)
		return nil
	}
	if err := createQueues(ctx, cs); err != nil {
		return err
	}
	for _, v := range vos {
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, kubehtcv1alpha1.QueueLabel, v.queue)
		if _, err := cs.CoreV1().Namespaces().Patch(ctx, v.namespace, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("labelling namespace %s: %w", v.namespace, err)
		}
	}
	// The whole backlog at once, in turns (one pod per VO at a time), so that creation order favours no VO
	// on a FIFO queue.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(shareCreators)
	for i := range shareBacklog(s) {
		for _, v := range vos {
			g.Go(func() error { return b.create(gctx, cs, s, v, i) })
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	_, to := shareWindowOf(s)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(start.Add(to))):
	}
	// The window is over: withdraw what has not started (many at a time: the API server deletes a
	// collection one pod after another) and wait for the rest to end.
	pending, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: demoLabel + "=" + sharePart, FieldSelector: "spec.nodeName="})
	if err != nil {
		return fmt.Errorf("listing the pending backlog pods: %w", err)
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(shareDeleters)
	for _, p := range pending.Items {
		g.Go(func() error {
			err := cs.CoreV1().Pods(p.Namespace).Delete(gctx, p.Name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("withdrawing pod %s/%s: %w", p.Namespace, p.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, v := range vos {
		for {
			active, err := b.pods(ctx, cs, v.namespace, "status.phase!=Succeeded,status.phase!=Failed")
			if err != nil {
				return err
			}
			if len(active) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

// pods lists the backlog's pods of namespace ns that match fieldSelector and are not being deleted.
func (voBacklogs) pods(ctx context.Context, cs kubernetes.Interface, ns, fieldSelector string) ([]corev1.Pod, error) {
	l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: demoLabel + "=" + sharePart, FieldSelector: fieldSelector})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of namespace %s: %w", ns, err)
	}
	out := l.Items[:0]
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// sharePart is the demoLabel value of the backlogs' pods.
const sharePart = "vo-backlog"

func (voBacklogs) create(ctx context.Context, cs kubernetes.Interface, s Scale, v vo, i int) error {
	spec := podSpec(s.SchedulerName, "payload", "1", "2Gi", 0)
	spec.RestartPolicy = corev1.RestartPolicyNever
	spec.NodeSelector = map[string]string{localcluster.PoolLabel: SharePool}
	spec.Tolerations = []corev1.Toleration{{Key: shareTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("%s-%04d", v.queue, i),
			Namespace:   v.namespace,
			Labels:      map[string]string{ClassLabel: "batch", demoLabel: sharePart},
			Annotations: map[string]string{localcluster.RuntimeAnnotation: s.d(shareRuntimeOf(i)).String()},
		},
		Spec: spec,
	}
	if _, err := cs.CoreV1().Pods(v.namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// queuesPath is the REST path of Queues (the typed clientset has no Queue client).
var queuesPath = "/apis/" + kubehtcv1alpha1.GroupVersion.Group + "/" + kubehtcv1alpha1.GroupVersion.Version + "/queues"

// createQueues creates root, with the demo's policy, and a leaf Queue per VO.
func createQueues(ctx context.Context, cs kubernetes.Interface) error {
	qs := []kubehtcv1alpha1.Queue{{
		ObjectMeta: metav1.ObjectMeta{Name: kubehtcv1alpha1.RootQueueName},
		Spec: kubehtcv1alpha1.QueueSpec{Policy: &kubehtcv1alpha1.FairSharePolicy{
			HalfLife:           metav1.Duration{Duration: shareHalfLife},
			AccountingInterval: metav1.Duration{Duration: shareAccountingInterval},
		}},
	}}
	for _, v := range vos {
		qs = append(qs, kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: v.queue}, Spec: kubehtcv1alpha1.QueueSpec{Parent: kubehtcv1alpha1.RootQueueName, Weight: v.weight}})
	}
	for _, q := range qs {
		q.TypeMeta = metav1.TypeMeta{APIVersion: kubehtcv1alpha1.GroupVersion.String(), Kind: "Queue"}
		q.Labels = map[string]string{demoLabel: sharePart}
		body, err := json.Marshal(q)
		if err != nil {
			return err
		}
		err = cs.CoreV1().RESTClient().Post().AbsPath(queuesPath).SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()
		if err != nil {
			return fmt.Errorf("creating Queue %s: %w", q.Name, err)
		}
	}
	return nil
}

// cleanUp deletes the Queues (root last) and waits until they are gone.
func (voBacklogs) cleanUp(ctx context.Context, cs kubernetes.Interface) error {
	names := []string{}
	for _, v := range vos {
		names = append(names, v.queue)
	}
	names = append(names, kubehtcv1alpha1.RootQueueName)
	for _, name := range names {
		err := cs.CoreV1().RESTClient().Delete().AbsPath(queuesPath, name).Do(ctx).Error()
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting Queue %s: %w", name, err)
		}
	}
	for _, name := range names {
		for {
			err := cs.CoreV1().RESTClient().Get().AbsPath(queuesPath, name).Do(ctx).Error()
			if apierrors.IsNotFound(err) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("Queue %s not deleted: %w", name, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// ShareSummary is what the VO backlogs received of SharePool during a pass's measurement window.
type ShareSummary struct {
	// From and To bound the measurement window, counted from the pass's first submission.
	From, To time.Duration
	// VOs are the VOs' queue names in the order of their weights.
	VOs []string
	// Target maps a VO to its share (its Queue's weight over the VOs' weights); Delivered to the fraction of
	// the VOs' core-seconds inside the window that its pods received (bound to a node, not finished).
	Target, Delivered map[string]float64
	// CoreSeconds is what the VOs' pods received in all inside the window.
	CoreSeconds float64
}

// MaxDeviation is the largest difference between a VO's delivered and target share, in percentage points.
func (s *ShareSummary) MaxDeviation() float64 {
	dev := 0.0
	for _, v := range s.VOs {
		dev = max(dev, math.Abs(s.Delivered[v]-s.Target[v]))
	}
	return 100 * dev
}

// percentages formats shares as whole percentages in VO order, e.g. "50/30/20".
func (s *ShareSummary) percentages(m map[string]float64) string {
	parts := make([]string, len(s.VOs))
	for i, v := range s.VOs {
		parts[i] = fmt.Sprintf("%.0f", 100*m[v])
	}
	return strings.Join(parts, "/")
}

// shareMeter integrates the cores of the backlogs' pods bound to nodes and not finished (what the scheduler
// allocated them, whether or not the simulated node has reported them Running yet) over the measurement window from the
// observations of a pass: each observation's cores count until the next observation.
type shareMeter struct {
	from, to time.Duration
	voOf     map[string]string // namespace → VO
	last     time.Duration
	cores    map[string]float64 // at the last observation
	seconds  map[string]float64
}

func newShareMeter(s Scale) *shareMeter {
	m := &shareMeter{voOf: map[string]string{}, cores: map[string]float64{}, seconds: map[string]float64{}}
	m.from, m.to = shareWindowOf(s)
	for _, v := range vos {
		m.voOf[v.namespace] = v.queue
	}
	return m
}

// observe records the pods seen at elapsed (from the pass's first submission; observations in order).
func (m *shareMeter) observe(elapsed time.Duration, pods []corev1.Pod) {
	if overlap := min(elapsed, m.to) - max(m.last, m.from); overlap > 0 {
		for v, c := range m.cores {
			m.seconds[v] += c * overlap.Seconds()
		}
	}
	m.last = elapsed
	clear(m.cores)
	for i := range pods {
		p := &pods[i]
		v, ok := m.voOf[p.Namespace]
		if !ok || p.Labels[demoLabel] != sharePart || p.Spec.NodeName == "" || p.DeletionTimestamp != nil ||
			p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, c := range p.Spec.Containers {
			m.cores[v] += c.Resources.Requests.Cpu().AsApproximateFloat64()
		}
	}
}

// coresNow formats the VOs' cores at the last observation as "atlas/cms/lhcb 10/6/4"; "" if none.
func (m *shareMeter) coresNow() string {
	var total float64
	names, cores := make([]string, len(vos)), make([]string, len(vos))
	for i, v := range vos {
		names[i], cores[i] = v.queue, fmt.Sprintf("%.0f", m.cores[v.queue])
		total += m.cores[v.queue]
	}
	if total == 0 {
		return ""
	}
	return strings.Join(names, "/") + " " + strings.Join(cores, "/")
}

// summary is the window's result; nil if the VOs received nothing in it (no SharePool).
func (m *shareMeter) summary() *ShareSummary {
	s := &ShareSummary{From: m.from, To: m.to, Target: map[string]float64{}, Delivered: map[string]float64{}}
	var weights float64
	for _, v := range vos {
		weights += float64(v.weight)
		s.CoreSeconds += m.seconds[v.queue]
	}
	if s.CoreSeconds == 0 {
		return nil
	}
	for _, v := range vos {
		s.VOs = append(s.VOs, v.queue)
		s.Target[v.queue] = float64(v.weight) / weights
		s.Delivered[v.queue] = m.seconds[v.queue] / s.CoreSeconds
	}
	return s
}
