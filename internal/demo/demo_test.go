package demo

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/internal/localcluster/quotacomponent"
)

var cluster *localcluster.Cluster

// TestMain starts the demo's cluster as `kubehtc demo` does: its node pools and, of kubehtc's components, the
// quota controller, which accounts the VOs' usage into Queue status.
func TestMain(m *testing.M) {
	os.Exit(clustertest.Main(m, localcluster.Options{
		NodePools:  NodePools(),
		Components: []localcluster.Component{quotacomponent.Component()},
	}, &cluster))
}

// TestDemoDrains runs the demo at half size and checks what its summary claims against the cluster.
func TestDemoDrains(t *testing.T) {
	clustertest.Require(t, cluster)
	var out bytes.Buffer
	sum, err := Run(context.Background(), cluster.Client(), &out, Options{Scale: Scale{Factor: 0.5, Runtime: 0.5}, Compare: true})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	batch, gpu, service := sum.Classes["batch"], sum.Classes["gpu"], sum.Classes["service"]
	// Half of 2 experiments x 8 jobs x 20 completions, and half of 4 MPI gangs of 24, every one succeeded.
	if want := 2*4*10 + 2*24; batch.Succeeded != want || batch.Failed != 0 || batch.Pending != 0 {
		t.Errorf("batch pods %+v, want %d succeeded, none failed or pending", batch, want)
	}
	// Six 1-GPU inference jobs, the 8-GPU training job and the 4 workers of the distributed training gang.
	if gpu.Succeeded != 7+4 {
		t.Errorf("gpu pods %+v, want 11 succeeded", gpu)
	}
	// Services never finish: all replicas (round(0.5*3), round(0.5*4), round(0.5*5)) still Running.
	if want := 2 + 2 + 3; service.Running != want || service.Total != want {
		t.Errorf("service pods %+v, want %d running", service, want)
	}
	if want := 2*4 + 7 + 1 + 2; sum.JobsComplete != sum.Jobs || sum.Jobs != want {
		t.Errorf("jobs: %d submitted, %d complete; want %d and all complete", sum.Jobs, sum.JobsComplete, want)
	}
	t.Logf("gangs seen partly placed: default-scheduler %d (longest %s), kubehtc %d (longest %s)",
		sum.Comparison.PartialGangs, sum.Comparison.LongestPartialGang, sum.PartialGangs, sum.LongestPartialGang)
	// The comparison pass ran the same workloads on the default profile.
	cmp := sum.Comparison
	if cmp == nil || cmp.Profile != "default-scheduler" || cmp.Jobs != sum.Jobs || cmp.JobsComplete != cmp.Jobs {
		t.Fatalf("comparison pass %+v, want the default profile with all %d jobs complete", cmp, sum.Jobs)
	}
	t.Logf("8-GPU job waited %s on default-scheduler, %s on kubehtc", cmp.WholeNodeGPUWait, sum.WholeNodeGPUWait)
	if sum.CPUPodsOnGPUNodes != 0 {
		t.Errorf("kubehtc ran %d CPU-only pods on GPU nodes", sum.CPUPodsOnGPUNodes)
	}
	// Packed, the six 1-GPU jobs share a node and leave the other whole; spread, they strand GPUs on both.
	if sum.MaxFragmentedGPUs >= cmp.MaxFragmentedGPUs {
		t.Errorf("fragmented GPUs: kubehtc %d, default %d; want kubehtc lower", sum.MaxFragmentedGPUs, cmp.MaxFragmentedGPUs)
	}
	if sum.NodesUsed["gpu"] == 0 {
		t.Errorf("the GPU job ran on no GPU node: nodes used %v", sum.NodesUsed)
	}
	// The GPU pod is on a GPU node.
	pods, err := cluster.Client().CoreV1().Pods("ml").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		node, err := cluster.Client().CoreV1().Nodes().Get(context.Background(), p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if node.Labels[localcluster.PoolLabel] != "gpu" || p.Status.Phase != corev1.PodSucceeded {
			t.Errorf("gpu pod %s on %s (pool %q) is %s", p.Name, node.Name, node.Labels[localcluster.PoolLabel], p.Status.Phase)
		}
	}
	// Fair share: the VO backlogs ran in the window in both passes; kubehtc delivered 50/30/20 within 10
	// points (loose: the window is 10 s at half runtime), and closer than the default profile's FIFO, which
	// serves the three backlogs alike.
	for _, p := range []*PassSummary{cmp, &sum.PassSummary} {
		if p.Shares == nil {
			t.Fatalf("%s pass: no VO share measured", p.Profile)
		}
		// Of the pool's 20 cores × the window; how much the pool was used depends on the machine's load.
		t.Logf("%s: VO shares delivered %v (%.0f core-seconds in %s-%s), max deviation %.1f points",
			p.Profile, p.Shares.Delivered, p.Shares.CoreSeconds, p.Shares.From, p.Shares.To, p.Shares.MaxDeviation())
	}
	if dev := sum.Shares.MaxDeviation(); dev > 10 {
		t.Errorf("kubehtc delivered VO shares %v, %.1f points from the targets 50/30/20; want at most 10", sum.Shares.Delivered, dev)
	}
	if dev, cmpDev := sum.Shares.MaxDeviation(), cmp.Shares.MaxDeviation(); dev >= cmpDev {
		t.Errorf("max share deviation: kubehtc %.1f points, default-scheduler %.1f; want kubehtc lower", dev, cmpDev)
	}
	// No pod but the backlogs ran on the share pool.
	all, err := cluster.Client().CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all.Items {
		if strings.HasPrefix(p.Spec.NodeName, SharePool+"-") && p.Labels[demoLabel] != sharePart {
			t.Errorf("pod %s/%s ran on the share pool's node %s", p.Namespace, p.Name, p.Spec.NodeName)
		}
	}
	for _, want := range []string{"CLASS", "batch", "service", "PLACEMENT", "nodes used, pool gpu", "gangs seen partly placed", "time to drain",
		"VO share delivered", "(target 50/30/20)", "max share deviation"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}
