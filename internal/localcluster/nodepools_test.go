package localcluster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestParseNodePoolsErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		// wantErr are substrings the error must contain: the field path and what is wrong.
		wantErr []string
	}{
		{name: "empty", yaml: "pools: []", wantErr: []string{"pools: at least one pool"}},
		{name: "not yaml", yaml: "pools: [", wantErr: []string{"parsing node pools"}},
		{name: "unknown field", yaml: "pools:\n- name: a\n  count: 1\n  cpu: '1'\n  memory: 1Gi\n  gpu: 2\n", wantErr: []string{`unknown field "gpu"`}},
		{name: "bad name", yaml: "pools:\n- name: Bad_Name\n  count: 1\n  cpu: '1'\n  memory: 1Gi\n", wantErr: []string{"pools[0].name", "Bad_Name"}},
		{name: "duplicate name", yaml: "pools:\n- {name: a, count: 1, cpu: '1', memory: 1Gi}\n- {name: a, count: 1, cpu: '1', memory: 1Gi}\n", wantErr: []string{"pools[1].name", "already the name of pools[0]"}},
		{name: "zero count", yaml: "pools:\n- {name: a, count: 0, cpu: '1', memory: 1Gi}\n", wantErr: []string{"pools[0].count: must be between 1 and"}},
		{name: "bad cpu", yaml: "pools:\n- {name: a, count: 1, cpu: lots, memory: 1Gi}\n", wantErr: []string{"pools[0].cpu", `"lots" is not a quantity`}},
		{name: "missing memory", yaml: "pools:\n- {name: a, count: 1, cpu: '1'}\n", wantErr: []string{"pools[0].memory: required"}},
		{name: "negative memory", yaml: "pools:\n- {name: a, count: 1, cpu: '1', memory: -1Gi}\n", wantErr: []string{"pools[0].memory: must be positive"}},
		{name: "gpu without model", yaml: "pools:\n- {name: g, count: 1, cpu: '1', memory: 1Gi, gpus: 4}\n", wantErr: []string{"pools[0].gpuModel: required when gpus > 0"}},
		{name: "negative gpus", yaml: "pools:\n- {name: g, count: 1, cpu: '1', memory: 1Gi, gpus: -1}\n", wantErr: []string{"pools[0].gpus: must not be negative"}},
		{name: "bad zone", yaml: "pools:\n- {name: a, count: 1, cpu: '1', memory: 1Gi, zone: 'zone a'}\n", wantErr: []string{"pools[0].zone", "not a valid label value"}},
		{name: "several errors at once", yaml: "pools:\n- {name: a, count: 0, cpu: x, memory: 1Gi}\n", wantErr: []string{"pools[0].count", "pools[0].cpu"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseNodePools([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("ParseNodePools succeeded, want an error containing %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNodePoolsNodes(t *testing.T) {
	cfg, err := ParseNodePools([]byte(`
pools:
- name: cpu
  count: 2
  cpu: "32"
  memory: 128Gi
  zone: zone-a
- name: gpu
  count: 1
  cpu: "64"
  memory: 512Gi
  pods: 50
  gpus: 8
  gpuModel: A100
  labels: {site: cern}
`))
	if err != nil {
		t.Fatal(err)
	}
	nodes := cfg.Nodes()
	type summary struct {
		Name, Pool, Zone, GPUModel, Site string
		CPU, Memory, Pods, GPUs          string
	}
	var got []summary
	for _, n := range nodes {
		gpus := n.Status.Allocatable[GPUResource]
		got = append(got, summary{
			Name: n.Name, Pool: n.Labels[PoolLabel], Zone: n.Labels[ZoneLabel], GPUModel: n.Labels[GPUModelLabel], Site: n.Labels["site"],
			CPU: n.Status.Allocatable.Cpu().String(), Memory: n.Status.Allocatable.Memory().String(),
			Pods: n.Status.Allocatable.Pods().String(), GPUs: gpus.String(),
		})
	}
	want := []summary{
		{Name: "cpu-0", Pool: "cpu", Zone: "zone-a", CPU: "32", Memory: "128Gi", Pods: "110", GPUs: "0"},
		{Name: "cpu-1", Pool: "cpu", Zone: "zone-a", CPU: "32", Memory: "128Gi", Pods: "110", GPUs: "0"},
		{Name: "gpu-0", Pool: "gpu", GPUModel: "A100", Site: "cern", CPU: "64", Memory: "512Gi", Pods: "50", GPUs: "8"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nodes (-want,+got):\n%s", diff)
	}
	if _, ok := nodes[0].Status.Capacity[GPUResource]; ok {
		t.Errorf("CPU node advertises %s", GPUResource)
	}
}

func TestDefaultNodePoolsAreMixed(t *testing.T) {
	cfg := DefaultNodePools()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default pools invalid: %v", err)
	}
	zones := map[string]bool{}
	gpuNodes := 0
	for _, n := range cfg.Nodes() {
		if n.Labels[ZoneLabel] != "" {
			zones[n.Labels[ZoneLabel]] = true
		}
		if q, ok := n.Status.Allocatable[GPUResource]; ok && q.Cmp(resource.MustParse("0")) > 0 {
			gpuNodes++
		}
	}
	if len(zones) < 3 || gpuNodes == 0 {
		t.Errorf("default pools: %d zones and %d GPU nodes, want >= 3 zones and a GPU nodegroup", len(zones), gpuNodes)
	}
}

func TestUniformNodePools(t *testing.T) {
	for _, n := range []int{1, 2, 3, 1000} {
		cfg := UniformNodePools(n, "32", "256Gi")
		if err := cfg.Validate(); err != nil {
			t.Fatalf("UniformNodePools(%d): %v", n, err)
		}
		if got := len(cfg.Nodes()); got != n {
			t.Errorf("UniformNodePools(%d) has %d nodes", n, got)
		}
		names := map[string]bool{}
		for _, node := range cfg.Nodes() {
			if names[node.Name] {
				t.Errorf("duplicate node name %s", node.Name)
			}
			names[node.Name] = true
			if node.Labels[corev1.LabelHostname] != node.Name {
				t.Errorf("node %s hostname label %q", node.Name, node.Labels[corev1.LabelHostname])
			}
		}
	}
}

func FuzzParseNodePools(f *testing.F) {
	f.Add([]byte("pools:\n- {name: a, count: 2, cpu: '4', memory: 8Gi, gpus: 1, gpuModel: T4}\n"))
	f.Add([]byte("pools: [{name: b, count: 1, cpu: 500m, memory: 1G, pods: 10, labels: {x: y}}]"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseNodePools(data)
		if err != nil {
			return
		}
		// Anything accepted must build exactly the nodes it describes, with positive capacity.
		nodes := cfg.Nodes()
		if len(nodes) != cfg.TotalNodes() {
			t.Fatalf("%d nodes built, config describes %d", len(nodes), cfg.TotalNodes())
		}
		for _, n := range nodes {
			if n.Status.Allocatable.Cpu().Sign() <= 0 || n.Status.Allocatable.Memory().Sign() <= 0 {
				t.Fatalf("node %s has non-positive capacity %v", n.Name, n.Status.Allocatable)
			}
		}
	})
}
