package gang_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/scheduler/gang"
	"github.com/kubehtc/kubehtc/scheduler/gang/gangtest"
)

// cluster: 80 CPU nodes of 32 cpu (2,560 cpu: exactly ten 64-pod gangs of 4 cpu) and 2 GPU nodes of 8 GPUs.
var cluster *localcluster.Cluster

const cpuNodes = 80

func TestMain(m *testing.M) {
	pools := localcluster.NodePoolsConfig{Pools: []localcluster.NodePool{
		{Name: "cpu", Count: cpuNodes, CPU: "32", Memory: "256Gi", Zone: "zone-a"},
		{Name: "gpu", Count: 2, CPU: "64", Memory: "512Gi", Zone: "zone-a", GPUs: 8, GPUModel: "A100"},
	}}
	os.Exit(clustertest.Main(m, localcluster.Options{NodePools: pools}, &cluster))
}

func clients(t *testing.T) (kubernetes.Interface, dynamic.Interface) {
	c := clustertest.Require(t, cluster)
	dyn, err := dynamic.NewForConfig(c.JSONRESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c.Client(), dyn
}

// 1. An 8-pod gang that fits: all 8 bind, and none binds before the 8th pod exists.
func TestGangBindsOnlyWhenComplete(t *testing.T) {
	cs, dyn := clients(t)
	ns := "gang-complete"
	clustertest.Namespace(t, cs, ns)
	rec := gangtest.Record(cs, ns)
	defer rec.Stop()
	ctx := context.Background()
	s := gangtest.Spec{Namespace: ns, Name: "train", Size: 8, CPU: "4"}
	if err := gangtest.Create(ctx, cs, dyn, s, 7); err != nil {
		t.Fatal(err)
	}
	// Give the scheduler every chance to (wrongly) bind the first seven: they are schedulable one by one.
	time.Sleep(3 * time.Second)
	if n := gangtest.Count(rec.Events(), "train", "bind"); n != 0 {
		t.Fatalf("%d of 7 members bound before the 8th pod existed", n)
	}
	if err := gangtest.CreatePods(ctx, cs, s, 7, 8); err != nil {
		t.Fatal(err)
	}
	clustertest.Poll(t, 2*time.Minute, func(context.Context) (bool, error) {
		return gangtest.Count(rec.Events(), "train", "bind") == 8, nil
	})
	// In watch order, every bind comes after the 8th pod's creation.
	var lastAdd int
	for _, e := range rec.Events() {
		if e.Kind == "add" && e.Pod == "train-7" {
			lastAdd = e.Seq
		}
	}
	for _, e := range rec.Events() {
		if e.Kind == "bind" && e.Seq < lastAdd {
			t.Errorf("%s bound (event %d) before train-7 was created (event %d)", e.Pod, e.Seq, lastAdd)
		}
	}
}

// 2. A gang that cannot fit stays fully unbound with an Event saying why; when capacity frees, all bind.
func TestGangWaitsWholeUntilCapacityFrees(t *testing.T) {
	cs, dyn := clients(t)
	ns := "gang-wait"
	clustertest.Namespace(t, cs, ns)
	rec := gangtest.Record(cs, ns)
	defer rec.Stop()
	ctx := context.Background()
	// One GPU node is taken whole by a running pod: 8 of 16 GPUs are free, the gang needs 2 x 8.
	blocker := gangtest.Spec{Namespace: ns, Name: "blocker", Size: 1, CPU: "1", GPUs: 8}.Pod(0)
	delete(blocker.Labels, "scheduling.x-k8s.io/pod-group")
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, blocker, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clustertest.Poll(t, time.Minute, func(context.Context) (bool, error) {
		return gangtest.Count(rec.Events(), "", "bind") == 1, nil
	})
	s := gangtest.Spec{Namespace: ns, Name: "wide", Size: 2, CPU: "8", GPUs: 8}
	if err := gangtest.Create(ctx, cs, dyn, s, -1); err != nil {
		t.Fatal(err)
	}
	var msg string
	clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
		evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=wide,involvedObject.kind=PodGroup"})
		if err != nil || len(evs.Items) == 0 {
			return false, nil
		}
		msg = evs.Items[0].Message
		return evs.Items[0].Reason == gang.EventReasonUnschedulable, nil
	})
	// 8 GPUs of 16 are free: one member of two fits.
	if want := "needs 2 pods (8 cpu, 1Gi memory, 8 nvidia.com/gpu each), 1 fit"; !strings.Contains(msg, want) {
		t.Errorf("PodGroup event %q does not contain %q", msg, want)
	}
	// The member's PodScheduled condition (what `kubectl describe pod` shows) says the same.
	var last *v1.PodCondition
	defer func() {
		if t.Failed() {
			t.Logf("last PodScheduled condition of wide-0: %+v", last)
			evs, _ := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
			for _, e := range evs.Items {
				t.Logf("event %s/%s %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
			}
			pods, _ := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
			for _, p := range pods.Items {
				t.Logf("pod %s node=%q phase=%s conditions=%+v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Conditions)
			}
		}
	}()
	clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
		pod, err := cs.CoreV1().Pods(ns).Get(ctx, "wide-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = podScheduled(pod)
		return last != nil && last.Status == v1.ConditionFalse && strings.Contains(last.Message, "1 fit"), nil
	})
	if n := gangtest.Count(rec.Events(), "wide", "bind"); n != 0 {
		t.Fatalf("%d members bound while the gang could not fit", n)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, blocker.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	clustertest.Poll(t, 2*time.Minute, func(context.Context) (bool, error) {
		return gangtest.Count(rec.Events(), "wide", "bind") == 2, nil
	})
}

func podScheduled(p *v1.Pod) *v1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == v1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// 4. A PodGroup exactly as Kubeflow's training operator creates it for a PyTorchJob (1 master + 3 workers,
// minMember, minResources, scheduleTimeoutSeconds; pods carry the pod-group label and schedulerName).
func TestKubeflowStylePodGroup(t *testing.T) {
	cs, dyn := clients(t)
	ns := "kubeflow"
	clustertest.Namespace(t, cs, ns)
	rec := gangtest.Record(cs, ns)
	defer rec.Stop()
	ctx := context.Background()
	s := gangtest.Spec{Namespace: ns, Name: "pytorch-mnist", Size: 4, CPU: "8", Memory: "32Gi", GPUs: 2,
		TimeoutSeconds: 60,
		MinResources: v1.ResourceList{v1.ResourceCPU: resource.MustParse("32"), v1.ResourceMemory: resource.MustParse("128Gi"),
			"nvidia.com/gpu": resource.MustParse("8")}}
	pg, err := s.PodGroup()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(gangtest.PodGroups).Namespace(ns).Create(ctx, pg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, role := range []string{"master-0", "worker-0", "worker-1", "worker-2"} {
		p := s.Pod(i)
		p.Name = "pytorch-mnist-" + role
		p.Labels["training.kubeflow.org/job-name"] = "pytorch-mnist"
		p.Labels["training.kubeflow.org/replica-type"] = strings.TrimSuffix(role, role[len(role)-2:])
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	clustertest.Poll(t, 2*time.Minute, func(context.Context) (bool, error) {
		return gangtest.Count(rec.Events(), "pytorch-mnist", "bind") == 4, nil
	})
	// Best fit: 4 x 2 GPUs go onto one GPU node, keeping the other whole.
	nodes := map[string]bool{}
	for _, e := range rec.Events() {
		if e.Kind == "bind" {
			nodes[e.Node] = true
		}
	}
	if len(nodes) != 1 {
		t.Errorf("the 4 members were spread over %d nodes %v, want 1 (8 GPUs fit on one node)", len(nodes), nodes)
	}
}

// 5. Gangs mixed with 2,000 singleton pods: singletons are not starved by waiting gangs, and gangs that fit
// still run.
func TestSingletonsNotStarvedByWaitingGangs(t *testing.T) {
	cs, dyn := clients(t)
	ns := "gang-mixed"
	clustertest.Namespace(t, cs, ns)
	rec := gangtest.Record(cs, ns)
	defer rec.Stop()
	ctx := context.Background()
	// A gang that can never fit (100 whole nodes of 32 cpu; there are 80), created first so it is ahead in
	// FIFO order, and 10 gangs of 8 x 4 cpu that fit.
	if err := gangtest.Create(ctx, cs, dyn, gangtest.Spec{Namespace: ns, Name: "huge", Size: 100, CPU: "32"}, -1); err != nil {
		t.Fatal(err)
	}
	for g := range 10 {
		if err := gangtest.Create(ctx, cs, dyn, gangtest.Spec{Namespace: ns, Name: fmt.Sprintf("small-%d", g), Size: 8, CPU: "4", Runtime: 20 * time.Second}, -1); err != nil {
			t.Fatal(err)
		}
	}
	const singletons = 2000
	createParallel(t, singletons, func(i int) error {
		p := gangtest.Spec{Namespace: ns, Name: "single", CPU: "500m", Memory: "256Mi", Runtime: 20 * time.Second}.Pod(i)
		delete(p.Labels, "scheduling.x-k8s.io/pod-group")
		_, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		return err
	})
	clustertest.Poll(t, 10*time.Minute, func(context.Context) (bool, error) {
		evs := rec.Events()
		if gangtest.Count(evs, "", "bind") < singletons {
			return false, nil
		}
		for g := range 10 {
			if gangtest.Count(evs, fmt.Sprintf("small-%d", g), "bind") < 8 {
				return false, nil
			}
		}
		return true, nil
	})
	if n := gangtest.Count(rec.Events(), "huge", "bind"); n != 0 {
		t.Errorf("%d members of the gang that cannot fit were bound", n)
	}
}

func createParallel(t *testing.T, n int, create func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				if err := create(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
