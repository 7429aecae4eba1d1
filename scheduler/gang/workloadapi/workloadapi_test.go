package workloadapi_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/scheduler/gang/gangtest"
)

// cluster: 8 nodes of 16 cpu, room for every gang of these tests at once.
var cluster *localcluster.Cluster

// TestMain starts the cluster with GenericWorkload on. In Kubernetes 1.37 that one gate is all upstream gang
// scheduling needs: it serves Workload and PodGroup (scheduling.k8s.io/v1beta1, turned on by localcluster along
// with the gate), makes the scheduling queue group the pods of a PodGroup, and adds the in-tree GangScheduling
// plugin to every profile's defaults. The cluster starting at all is the check that kubehtc-scheduler's
// configuration (both profiles, QueueOrder as the queue sort, the Gang plugin) still loads with the gate on:
// localcluster.Start fails when the scheduler cannot be set up.
func TestMain(m *testing.M) {
	pools := localcluster.NodePoolsConfig{Pools: []localcluster.NodePool{
		{Name: "cpu", Count: 8, CPU: "16", Memory: "64Gi", Zone: "zone-a"},
	}}
	opts := localcluster.Options{NodePools: pools, FeatureGates: map[string]bool{"GenericWorkload": true}}
	os.Exit(clustertest.Main(m, opts, &cluster))
}

func clients(t *testing.T) (kubernetes.Interface, dynamic.Interface) {
	c := clustertest.Require(t, cluster)
	dyn, err := dynamic.NewForConfig(c.JSONRESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c.Client(), dyn
}

// upstreamGang is a scheduling.k8s.io/v1beta1 PodGroup with a gang policy and its member pods, which join it
// through spec.schedulingGroup.podGroupName. A standalone PodGroup (no Workload) is valid: workloadRef is
// optional.
type upstreamGang struct {
	namespace, name string
	size, minCount  int32
	schedulerName   string
}

func (g upstreamGang) podGroup() *schedulingv1beta1.PodGroup {
	return &schedulingv1beta1.PodGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: g.namespace, Name: g.name},
		Spec: schedulingv1beta1.PodGroupSpec{
			SchedulingPolicy: schedulingv1beta1.PodGroupSchedulingPolicy{
				Gang: &schedulingv1beta1.GangSchedulingPolicy{MinCount: g.minCount},
			},
		},
	}
}

func (g upstreamGang) pod(i int32) *v1.Pod {
	req := v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("1Gi")}
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: g.namespace, Name: fmt.Sprintf("%s-%d", g.name, i)},
		Spec: v1.PodSpec{
			SchedulerName:   g.schedulerName,
			SchedulingGroup: &v1.PodSchedulingGroup{PodGroupName: ptr.To(g.name)},
			Containers: []v1.Container{{Name: "main", Image: "registry.example/train:1",
				Resources: v1.ResourceRequirements{Requests: req}}},
		},
	}
}

func (g upstreamGang) createPodGroup(ctx context.Context, cs kubernetes.Interface) error {
	if _, err := cs.SchedulingV1beta1().PodGroups(g.namespace).Create(ctx, g.podGroup(), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating scheduling.k8s.io PodGroup %s/%s: %w", g.namespace, g.name, err)
	}
	return nil
}

// createPods creates members from..to-1.
func (g upstreamGang) createPods(ctx context.Context, cs kubernetes.Interface, from, to int32) error {
	for i := from; i < to; i++ {
		if _, err := cs.CoreV1().Pods(g.namespace).Create(ctx, g.pod(i), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating pod %d of gang %s: %w", i, g.name, err)
		}
	}
	return nil
}

// waitInitiallyScheduled waits for the PodGroup's PodGroupInitiallyScheduled condition to be True: the
// in-tree scheduler's pod-group cycle, not pod-by-pod scheduling, placed the gang.
func (g upstreamGang) waitInitiallyScheduled(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	var conds []metav1.Condition
	defer func() {
		if t.Failed() {
			t.Logf("PodGroup %s/%s conditions: %+v", g.namespace, g.name, conds)
		}
	}()
	clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
		pg, err := cs.SchedulingV1beta1().PodGroups(g.namespace).Get(ctx, g.name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds = pg.Status.Conditions
		return meta.IsStatusConditionTrue(conds, schedulingv1beta1.PodGroupInitiallyScheduled), nil
	})
}

// count returns how many events of kind the pods named <prefix>-N have. gangtest.Count goes by the
// scheduling.x-k8s.io label, which upstream gang members do not carry.
func count(events []gangtest.Event, prefix, kind string) int {
	n := 0
	for _, e := range events {
		if e.Kind == kind && strings.HasPrefix(e.Pod, prefix+"-") {
			n++
		}
	}
	return n
}

// bindsBefore returns the binds recorded, in watch order, before pod was added.
func bindsBefore(events []gangtest.Event, pod string) []string {
	var last int
	for _, e := range events {
		if e.Kind == "add" && e.Pod == pod {
			last = e.Seq
		}
	}
	var early []string
	for _, e := range events {
		if e.Kind == "bind" && e.Seq < last {
			early = append(early, e.Pod)
		}
	}
	return early
}

// holdBack is how long a partial gang is given to (wrongly) bind: every member fits on its own.
const holdBack = 3 * time.Second

// An upstream gang (scheduling.k8s.io PodGroup, minCount 4) is scheduled all-or-nothing by either profile:
// by default-scheduler, whose queue sort is QueueOrder, and by kubehtc, whose Gang plugin and QueueOrder must
// leave the upstream pod-group queue entities to the in-tree GangScheduling plugin.
func TestUpstreamGang(t *testing.T) {
	cs, _ := clients(t)
	for _, sched := range []string{v1.DefaultSchedulerName, "kubehtc"} {
		t.Run(sched, func(t *testing.T) {
			t.Run("all members at once", func(t *testing.T) {
				ns := "wl-" + sched + "-whole"
				clustertest.Namespace(t, cs, ns)
				rec := gangtest.Record(cs, ns)
				defer rec.Stop()
				ctx := context.Background()
				g := upstreamGang{namespace: ns, name: "train", size: 4, minCount: 4, schedulerName: sched}
				if err := g.createPodGroup(ctx, cs); err != nil {
					t.Fatal(err)
				}
				if err := g.createPods(ctx, cs, 0, g.size); err != nil {
					t.Fatal(err)
				}
				defer dumpOnFailure(t, cs, ns)
				clustertest.Poll(t, 2*time.Minute, func(context.Context) (bool, error) {
					return count(rec.Events(), g.name, "bind") == 4, nil
				})
				g.waitInitiallyScheduled(t, cs)
			})
			t.Run("last member completes the gang", func(t *testing.T) {
				ns := "wl-" + sched + "-partial"
				clustertest.Namespace(t, cs, ns)
				rec := gangtest.Record(cs, ns)
				defer rec.Stop()
				ctx := context.Background()
				g := upstreamGang{namespace: ns, name: "train", size: 4, minCount: 4, schedulerName: sched}
				if err := g.createPodGroup(ctx, cs); err != nil {
					t.Fatal(err)
				}
				if err := g.createPods(ctx, cs, 0, 3); err != nil {
					t.Fatal(err)
				}
				defer dumpOnFailure(t, cs, ns)
				time.Sleep(holdBack)
				if n := count(rec.Events(), g.name, "bind"); n != 0 {
					t.Fatalf("%d of 3 members bound before the 4th pod existed", n)
				}
				if err := g.createPods(ctx, cs, 3, 4); err != nil {
					t.Fatal(err)
				}
				clustertest.Poll(t, 2*time.Minute, func(context.Context) (bool, error) {
					return count(rec.Events(), g.name, "bind") == 4, nil
				})
				if early := bindsBefore(rec.Events(), "train-3"); len(early) != 0 {
					t.Errorf("bound before train-3 was created: %v", early)
				}
				g.waitInitiallyScheduled(t, cs)
			})
		})
	}
}

// kubehtc's own gang (scheduling.x-k8s.io PodGroup, 8 pods, kubehtc profile) stays all-or-nothing with the gate
// on, beside the upstream API.
func TestSchedulerPluginsGangWithGateOn(t *testing.T) {
	cs, dyn := clients(t)
	ns := "wl-ours"
	clustertest.Namespace(t, cs, ns)
	rec := gangtest.Record(cs, ns)
	defer rec.Stop()
	ctx := context.Background()
	s := gangtest.Spec{Namespace: ns, Name: "train", Size: 8, CPU: "4"}
	if err := gangtest.Create(ctx, cs, dyn, s, 7); err != nil {
		t.Fatal(err)
	}
	defer dumpOnFailure(t, cs, ns)
	time.Sleep(holdBack)
	if n := gangtest.Count(rec.Events(), s.Name, "bind"); n != 0 {
		t.Fatalf("%d of 7 members bound before the 8th pod existed", n)
	}
	if err := gangtest.CreatePods(ctx, cs, s, 7, 8); err != nil {
		t.Fatal(err)
	}
	clustertest.Poll(t, 2*time.Minute, func(context.Context) (bool, error) {
		return gangtest.Count(rec.Events(), s.Name, "bind") == 8, nil
	})
	if early := bindsBefore(rec.Events(), "train-7"); len(early) != 0 {
		t.Errorf("bound before train-7 was created: %v", early)
	}
}

// dumpOnFailure logs the namespace's pods and events when the test failed, to tell which scheduler did what.
func dumpOnFailure(t *testing.T, cs kubernetes.Interface, ns string) {
	if !t.Failed() {
		return
	}
	ctx := context.Background()
	pods, _ := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		t.Logf("pod %s scheduler=%s node=%q phase=%s conditions=%+v", p.Name, p.Spec.SchedulerName, p.Spec.NodeName, p.Status.Phase, p.Status.Conditions)
	}
	evs, _ := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	for _, e := range evs.Items {
		t.Logf("event %s/%s %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
	}
}
