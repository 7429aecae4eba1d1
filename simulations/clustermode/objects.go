package clustermode

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/simulations/scenario"
	"github.com/kubehtc/kubehtc/simulations/workload"
)

// Fair-share policy of a run when Options leave it unset: the root Queue's defaults (deploy/crds), in
// simulated time.
const (
	DefaultHalfLife           = 24 * time.Hour
	DefaultAccountingInterval = time.Minute
)

// minPolicyDuration is the smallest half-life and accounting interval the Queue CRD accepts.
const minPolicyDuration = time.Second

// weightScale is what Queue weights sum to (about): shares keep their ratio to within 0.1 percentage points,
// far below the CRD's maximum weight of 1,000,000.
const weightScale = 1000

// scheme holds the types cluster mode creates through its controller-runtime client.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, kubehtcv1alpha1.AddToScheme, schedv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// CompressPolicy returns the root Queue's policy for a run at compression: the half-life and the accounting
// interval, given in simulated time, are divided by the compression so that usage decays in wall time as the
// scenario says in simulated time (a 24 h half-life at compression 60 is 24 min of wall time). Both are
// rounded to whole milliseconds and raised to the CRD's minimum of 1 s, so below that (an interval of 1 m at
// compression 120) the controller accounts less often than the scenario asks: every compression×1 s of
// simulated time.
func CompressPolicy(halfLife, interval time.Duration, compression float64) *kubehtcv1alpha1.FairSharePolicy {
	if halfLife <= 0 {
		halfLife = DefaultHalfLife
	}
	if interval <= 0 {
		interval = DefaultAccountingInterval
	}
	scale := func(d time.Duration) time.Duration {
		return max(minPolicyDuration, time.Duration(float64(d)/compression).Round(time.Millisecond))
	}
	return &kubehtcv1alpha1.FairSharePolicy{
		HalfLife:           metav1.Duration{Duration: scale(halfLife)},
		AccountingInterval: metav1.Duration{Duration: scale(interval)},
	}
}

// Weights maps the scenario's shares to Queue weights: integers in proportion to the shares, summing to about
// 1000 (so a ratio is kept to within 0.1 percentage points), at least 1.
func Weights(queues []scenario.Queue) map[string]int32 {
	total := 0.0
	for _, q := range queues {
		total += q.Share
	}
	out := make(map[string]int32, len(queues))
	for _, q := range queues {
		w := int32(1)
		if total > 0 {
			w = max(1, int32(math.Round(q.Share/total*weightScale)))
		}
		out[q.Name] = w
	}
	return out
}

// objects are the cluster objects a run creates besides its pods: the queue tree, the namespaces and the
// PodGroups. Each run creates and deletes its own, so profiles run one after the other on the same cluster
// see the same, fresh state.
type objects struct {
	kc     client.Client
	queues []*kubehtcv1alpha1.Queue // root first
	ns     []string
	groups map[string]bool // namespace/name of PodGroups created
}

// setup creates the root Queue and one Queue per scenario queue (when the scenario declares queues), then one
// namespace per pod queue, labelled with its Queue when it has one: FairShare rejects pods of a labelled
// namespace whose Queue is missing, so Queues come first. It waits until the quota controller has accounted
// every Queue, so that the first pods are ranked on accounted status, as on a site that has been running.
func setup(ctx context.Context, kc client.Client, set *workload.Set, opts Options) (*objects, error) {
	o := &objects{kc: kc, groups: map[string]bool{}}
	labelled := map[string]bool{}
	if len(opts.Queues) > 0 {
		root := &kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: kubehtcv1alpha1.RootQueueName, Labels: map[string]string{RunLabel: opts.Profile}},
			Spec: kubehtcv1alpha1.QueueSpec{Policy: CompressPolicy(opts.HalfLife, opts.AccountingInterval, opts.Compression)}}
		if err := kc.Create(ctx, root); err != nil {
			return o, fmt.Errorf("creating the root Queue (cluster mode needs a cluster without Queues): %w", err)
		}
		o.queues = append(o.queues, root)
		weights := Weights(opts.Queues)
		for _, sq := range opts.Queues {
			q := &kubehtcv1alpha1.Queue{ObjectMeta: metav1.ObjectMeta{Name: sq.Name, Labels: map[string]string{RunLabel: opts.Profile}},
				Spec: kubehtcv1alpha1.QueueSpec{Parent: kubehtcv1alpha1.RootQueueName, Weight: weights[sq.Name]}}
			if err := kc.Create(ctx, q); err != nil {
				return o, fmt.Errorf("creating Queue %s: %w", sq.Name, err)
			}
			o.queues = append(o.queues, q)
			labelled[sq.Name] = true
		}
	}
	seen := map[string]bool{}
	for _, p := range set.Pods {
		if seen[p.Queue] {
			continue
		}
		seen[p.Queue] = true
		ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.Queue, Labels: map[string]string{RunLabel: opts.Profile}}}
		if labelled[p.Queue] {
			ns.Labels[kubehtcv1alpha1.QueueLabel] = p.Queue
		}
		if err := kc.Create(ctx, ns); err != nil {
			return o, fmt.Errorf("creating namespace %s: %w", p.Queue, err)
		}
		o.ns = append(o.ns, p.Queue)
	}
	if len(o.queues) == 0 {
		return o, nil
	}
	// The quota controller retries every 10 s while there is no queue tree; a minute is plenty.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, q := range o.queues {
			var got kubehtcv1alpha1.Queue
			if err := kc.Get(ctx, client.ObjectKeyFromObject(q), &got); err != nil {
				return false, nil
			}
			if !meta.IsStatusConditionTrue(got.Status.Conditions, kubehtcv1alpha1.QueueConditionAccounted) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return o, fmt.Errorf("waiting for the quota controller to account the queues (is it running? see internal/localcluster/quotacomponent): %w", err)
	}
	return o, nil
}

// podGroup creates the PodGroup of gang pod p (minMember = its gang size) unless the run created it already.
func (o *objects) podGroup(ctx context.Context, p *workload.Pod, profile string) error {
	key := p.Queue + "/" + p.Gang
	if o.groups[key] {
		return nil
	}
	pg := &schedv1alpha1.PodGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Queue, Name: p.Gang, Labels: map[string]string{RunLabel: profile}},
		Spec:       schedv1alpha1.PodGroupSpec{MinMember: int32(p.GangSize)},
	}
	if err := o.kc.Create(ctx, pg); err != nil {
		return fmt.Errorf("creating PodGroup %s: %w", key, err)
	}
	o.groups[key] = true
	return nil
}

// cleanup deletes the run's pods, PodGroups, namespaces and Queues, and waits until they are gone, so that the
// next profile starts on empty nodes with fresh queues (no usage carried over).
func (o *objects) cleanup(ctx context.Context, profile string) error {
	sel := client.MatchingLabels{RunLabel: profile}
	var errs []error
	for _, ns := range o.ns {
		if err := o.kc.DeleteAllOf(ctx, &v1.Pod{}, client.InNamespace(ns), sel, client.GracePeriodSeconds(0)); err != nil {
			errs = append(errs, fmt.Errorf("deleting the run's pods in %s: %w", ns, err))
		}
		if len(o.groups) > 0 {
			if err := o.kc.DeleteAllOf(ctx, &schedv1alpha1.PodGroup{}, client.InNamespace(ns), sel); err != nil {
				errs = append(errs, fmt.Errorf("deleting the run's PodGroups in %s: %w", ns, err))
			}
		}
	}
	errs = append(errs, gone(ctx, o.kc, &v1.PodList{}, sel))
	for _, ns := range o.ns {
		if err := o.kc.Delete(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting namespace %s: %w", ns, err))
		}
	}
	// Leaves before the root.
	for i := len(o.queues) - 1; i >= 0; i-- {
		if err := o.kc.Delete(ctx, o.queues[i]); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting Queue %s: %w", o.queues[i].Name, err))
		}
	}
	errs = append(errs, gone(ctx, o.kc, &v1.NamespaceList{}, sel), gone(ctx, o.kc, &kubehtcv1alpha1.QueueList{}, sel))
	return errors.Join(errs...)
}

// gone waits until no object of list's kind carries the run's label.
func gone(ctx context.Context, kc client.Client, list client.ObjectList, sel client.MatchingLabels) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := kc.List(ctx, list, sel); err != nil {
			return false, nil
		}
		return meta.LenList(list) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the run's %T to be deleted: %w", list, err)
	}
	return nil
}
