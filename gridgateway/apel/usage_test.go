package apel

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// The kubelet's stats/summary (k8s.io/kubelet/pkg/apis/stats/v1alpha1): cumulative CPU per pod, working set.
func TestKubeletUsageKeepsLastCPUAndPeakMemory(t *testing.T) {
	k := &KubeletUsage{pods: map[types.UID]*podUsage{}}
	samples := []string{
		`{"node":{"nodeName":"n1"},"pods":[{"podRef":{"name":"p","namespace":"ns","uid":"u1"},"cpu":{"usageCoreNanoSeconds":1500000000},"memory":{"workingSetBytes":4096000}}]}`,
		`{"pods":[{"podRef":{"uid":"u1"},"cpu":{"usageCoreNanoSeconds":7250000000},"memory":{"workingSetBytes":2048000}},{"podRef":{"uid":"u2"}}]}`,
	}
	for _, s := range samples {
		if err := k.add([]byte(s), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	cpu, mem, ok := k.PodUsage("u1")
	if !ok || cpu != 7.25 || mem != 4096000 {
		t.Errorf("PodUsage(u1) = %v s, %d B, %v; want 7.25 s, 4096000 B (the peak), true", cpu, mem, ok)
	}
	if _, _, ok := k.PodUsage("u2"); ok {
		t.Error("a pod without CPU stats counts as measured")
	}
	if err := k.add([]byte("not json"), time.Now()); err == nil {
		t.Error("junk summary accepted")
	}
}
