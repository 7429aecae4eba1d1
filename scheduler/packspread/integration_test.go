package packspread_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/scheduler"
	"github.com/kubehtc/kubehtc/scheduler/packspread"
)

// cluster is the one local cluster of this test binary: 3 zones x 15 CPU nodes (32 cpu) and 10 GPU nodes
// (8 GPUs), as the scenario of the issue describes.
var cluster *localcluster.Cluster

func TestMain(m *testing.M) {
	pools := localcluster.NodePoolsConfig{}
	for _, z := range []string{"a", "b", "c"} {
		pools.Pools = append(pools.Pools, localcluster.NodePool{Name: "cpu-" + z, Count: 15, CPU: "32", Memory: "128Gi", Zone: "zone-" + z})
	}
	pools.Pools = append(pools.Pools,
		localcluster.NodePool{Name: "gpu-a", Count: 4, CPU: "64", Memory: "512Gi", Zone: "zone-a", GPUs: 8, GPUModel: "A100"},
		localcluster.NodePool{Name: "gpu-b", Count: 3, CPU: "64", Memory: "512Gi", Zone: "zone-b", GPUs: 8, GPUModel: "A100"},
		localcluster.NodePool{Name: "gpu-c", Count: 3, CPU: "64", Memory: "512Gi", Zone: "zone-c", GPUs: 8, GPUModel: "A100"},
	)
	os.Exit(clustertest.Main(m, localcluster.Options{NodePools: pools}, &cluster))
}

// Scenario sizes. Batch: 450x1 + 100x2 + 30x4 + 20x8 = 930 cpu, at most ceil(930/32)+1 = 31 nodes when packed.
// GPU: 4x8 + 2x4 + 3x2 + 31x1 = 77 of the 80 GPUs.
var (
	batchSizes = map[int64]int{1: 450, 2: 100, 4: 30, 8: 20}
	gpuSizes   = map[int64]int{8: 4, 4: 2, 2: 3, 1: 31}
)

const (
	deployments = 20
	replicas    = 3
	nodeCPU     = 32
)

// item is one thing the scenario submits.
type item struct {
	kind  string // deployment, batch, gpu
	size  int64  // cpu for batch, GPUs for gpu
	index int
}

func scenarioItems() []item {
	var items []item
	for i := range deployments {
		items = append(items, item{kind: "deployment", index: i})
	}
	for _, sizes := range []struct {
		kind string
		m    map[int64]int
	}{{"batch", batchSizes}, {"gpu", gpuSizes}} {
		keys := make([]int64, 0, len(sizes.m))
		for k := range sizes.m {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		for _, size := range keys {
			for range sizes.m[size] {
				items = append(items, item{kind: sizes.kind, size: size, index: len(items)})
			}
		}
	}
	// Mixed order, the same for both profiles.
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	return items
}

// outcome is what a site admin would check after the scenario.
type outcome struct {
	deploymentsOnDistinctNodes, deploymentsInTwoZones int
	batchNodes, batchBound, batchCPU                  int
	cpuPodsOnGPUNodes                                 int
	gpu8Bound, gpuBound, gpuPending                   int
	fragmentation                                     packspread.Fragmentation
	nodesUsed                                         int
}

func (o outcome) String() string {
	return fmt.Sprintf("deployments on distinct nodes %d/%d, in >=2 zones %d/%d; batch pods %d bound on %d nodes (limit %d); "+
		"CPU-only pods on GPU nodes %d; GPU pods bound %d (8-GPU: %d/%d), pending %d; GPUs free %d, fragmented %d; nodes used %d",
		o.deploymentsOnDistinctNodes, deployments, o.deploymentsInTwoZones, deployments, o.batchBound, o.batchNodes,
		(o.batchCPU+nodeCPU-1)/nodeCPU+1, o.cpuPodsOnGPUNodes, o.gpuBound, o.gpu8Bound, gpuSizes[8], o.gpuPending,
		o.fragmentation.Free, o.fragmentation.Fragmented, o.nodesUsed)
}

func TestPlacementScenario(t *testing.T) {
	clustertest.Require(t, cluster)
	results := map[string]outcome{}
	for _, profile := range []string{"default-scheduler", scheduler.ProfileName} {
		// A subtest each, so that the namespace's cleanup frees the nodes before the next profile runs.
		t.Run(profile, func(t *testing.T) {
			o := runScenario(t, cluster.Client(), profile)
			t.Logf("%-17s %s", profile, o)
			results[profile] = o
		})
	}
	o := results[scheduler.ProfileName]
	if o.deploymentsOnDistinctNodes != deployments || o.deploymentsInTwoZones != deployments {
		t.Errorf("kubehtc: %d/%d deployments on distinct nodes, %d/%d in >= 2 zones; want all", o.deploymentsOnDistinctNodes, deployments, o.deploymentsInTwoZones, deployments)
	}
	if limit := (o.batchCPU+nodeCPU-1)/nodeCPU + 1; o.batchNodes > limit {
		t.Errorf("kubehtc: batch pods on %d nodes, want at most ceil(%d/%d)+1 = %d", o.batchNodes, o.batchCPU, nodeCPU, limit)
	}
	if o.cpuPodsOnGPUNodes != 0 {
		t.Errorf("kubehtc: %d CPU-only pods on GPU nodes, want 0", o.cpuPodsOnGPUNodes)
	}
	if o.gpu8Bound != gpuSizes[8] {
		t.Errorf("kubehtc: %d of %d 8-GPU pods bound", o.gpu8Bound, gpuSizes[8])
	}
	total := 0
	for _, n := range batchSizes {
		total += n
	}
	if o.batchBound != total {
		t.Errorf("kubehtc: %d of %d batch pods bound", o.batchBound, total)
	}
}

func runScenario(t *testing.T, cs kubernetes.Interface, profile string) outcome {
	t.Helper()
	ctx := context.Background()
	ns := "placement-" + profile
	clustertest.Namespace(t, cs, ns)

	items := scenarioItems()
	for _, it := range items {
		var err error
		switch it.kind {
		case "deployment":
			_, err = cs.AppsV1().Deployments(ns).Create(ctx, webDeployment(it.index, profile), metav1.CreateOptions{})
		case "batch":
			_, err = cs.CoreV1().Pods(ns).Create(ctx, scenarioPod(fmt.Sprintf("batch-%03d", it.index), profile, it.size, it.size*2, 0), metav1.CreateOptions{})
		case "gpu":
			_, err = cs.CoreV1().Pods(ns).Create(ctx, scenarioPod(fmt.Sprintf("gpu-%03d", it.index), profile, 4*it.size, 32*it.size, it.size), metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatalf("creating %s %d: %v", it.kind, it.index, err)
		}
	}
	wantPods := deployments*replicas + len(items) - deployments

	// Settled: every pod was bound or found unschedulable, and nothing was bound for a while.
	var pods []v1.Pod
	lastBound, stableSince := -1, time.Now()
	clustertest.Poll(t, 5*time.Minute, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		pods = l.Items
		bound, decided := 0, 0
		for i := range pods {
			if pods[i].Spec.NodeName != "" {
				bound++
				decided++
			} else if podUnschedulable(&pods[i]) {
				decided++
			}
		}
		if bound != lastBound {
			lastBound, stableSince = bound, time.Now()
		}
		return len(pods) == wantPods && decided == wantPods && time.Since(stableSince) > 3*time.Second, nil
	})

	nodeList, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*v1.Node{}
	var nodePtrs []*v1.Node
	for i := range nodeList.Items {
		nodes[nodeList.Items[i].Name] = &nodeList.Items[i]
		nodePtrs = append(nodePtrs, &nodeList.Items[i])
	}
	isGPUNode := func(name string) bool {
		q, ok := nodes[name].Status.Allocatable[localcluster.GPUResource]
		return ok && q.Value() > 0
	}
	var o outcome
	byDeployment := map[string][]string{}
	batchNodes, used := map[string]bool{}, map[string]bool{}
	var podPtrs []*v1.Pod
	for i := range pods {
		p := &pods[i]
		podPtrs = append(podPtrs, p)
		gpus := p.Spec.Containers[0].Resources.Requests[localcluster.GPUResource]
		if p.Spec.NodeName == "" {
			if gpus.Value() > 0 {
				o.gpuPending++
			}
			continue
		}
		used[p.Spec.NodeName] = true
		if gpus.Value() == 0 && isGPUNode(p.Spec.NodeName) {
			o.cpuPodsOnGPUNodes++
		}
		switch {
		case p.Labels["app"] != "":
			byDeployment[p.Labels["app"]] = append(byDeployment[p.Labels["app"]], p.Spec.NodeName)
		case gpus.Value() > 0:
			o.gpuBound++
			if gpus.Value() == 8 {
				o.gpu8Bound++
			}
		default:
			o.batchBound++
			batchNodes[p.Spec.NodeName] = true
		}
	}
	for size, n := range batchSizes {
		o.batchCPU += int(size) * n
	}
	o.batchNodes, o.nodesUsed = len(batchNodes), len(used)
	for _, nodeNames := range byDeployment {
		distinct, zones := map[string]bool{}, map[string]bool{}
		for _, n := range nodeNames {
			distinct[n] = true
			zones[nodes[n].Labels[v1.LabelTopologyZone]] = true
		}
		if len(nodeNames) == replicas && len(distinct) == replicas {
			o.deploymentsOnDistinctNodes++
		}
		if len(zones) >= 2 {
			o.deploymentsInTwoZones++
		}
	}
	o.fragmentation = packspread.GPUFragmentation(nodePtrs, podPtrs, localcluster.GPUResource, 8)
	return o
}

func podUnschedulable(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodScheduled && c.Status == v1.ConditionFalse {
			return true
		}
	}
	return false
}

func scenarioPod(name, profile string, cpu, memGi, gpus int64) *v1.Pod {
	req := v1.ResourceList{
		v1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(memGi<<30, resource.BinarySI),
	}
	var lim v1.ResourceList
	if gpus > 0 {
		req[localcluster.GPUResource] = *resource.NewQuantity(gpus, resource.DecimalSI)
		lim = v1.ResourceList{localcluster.GPUResource: *resource.NewQuantity(gpus, resource.DecimalSI)}
	}
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PodSpec{
			SchedulerName:                 profile,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers:                    []v1.Container{{Name: "c", Image: "busybox", Resources: v1.ResourceRequirements{Requests: req, Limits: lim}}},
		},
	}
}

func webDeployment(i int, profile string) *appsv1.Deployment {
	name := fmt.Sprintf("web-%02d", i)
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       webSpec(profile),
			},
		},
	}
}

// webSpec is a web replica: 500m cpu, 512Mi.
func webSpec(profile string) v1.PodSpec {
	spec := scenarioPod("", profile, 0, 0, 0).Spec
	spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("512Mi")}
	return spec
}
