package config

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// The bounds the gateway checks are the CRD's: read them from the generated CRD (deploy/crds).
func TestCRDBoundsMatchTheCRD(t *testing.T) {
	b, err := os.ReadFile("../../deploy/crds/kubehtc.io_gridjobs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema struct {
						Properties map[string]struct {
							Properties map[string]struct {
								Properties map[string]struct {
									Maximum int64 `json:"maximum"`
								} `json:"properties"`
							} `json:"properties"`
						} `json:"properties"`
					} `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	d := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["description"].Properties
	got := Limits{MaxCores: int32(d["cores"].Maximum), MaxMemoryMiB: d["memoryMiB"].Maximum, MaxWallTimeSeconds: d["wallTimeSeconds"].Maximum,
		MaxDiskMiB: d["diskMiB"].Maximum, MaxGPUs: int32(d["gpus"].Maximum)}
	if diff := cmp.Diff(CRDBounds, got); diff != "" {
		t.Errorf("CRDBounds differ from the CRD (-config,+crd):\n%s", diff)
	}
}

func TestLimitsWithinCRDBounds(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"valid", base + "limits: {maxCores: 64, maxMemoryMiB: 262144}\n", ""},
		{"queue cores above the CRD", strings.Replace(base, `image: "pilot:1"}`, `image: "pilot:1", limits: {maxCores: 20000}}`, 1), "queues[0] (atlas-prod) limits.maxCores 20000: above 1024"},
		{"site memory above the CRD", base + "limits: {maxMemoryMiB: 99999999}\n", "limits.maxMemoryMiB 99999999: above 16777216"},
		{"negative wall time", base + "limits: {maxWallTimeSeconds: -1}\n", "limits.maxWallTimeSeconds -1: must not be negative"},
		{"GPUs above the CRD", strings.Replace(base, `image: "pilot:1"}`, `image: "pilot:1", limits: {maxGPUs: 65}}`, 1), "limits.maxGPUs 65: above 64"},
		{"default wall above the max", strings.Replace(base, `image: "pilot:1"}`, `image: "pilot:1", defaultWallTimeSeconds: 7200, limits: {maxWallTimeSeconds: 3600}}`, 1), "defaultWallTimeSeconds 7200: must lie in [0, 3600]"},
		{"negative default memory", strings.Replace(base, `image: "pilot:1"}`, `image: "pilot:1", defaultMemoryMiBPerCore: -5}`, 1), "defaultMemoryMiBPerCore -5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCheckNodes(t *testing.T) {
	nodes := []NodeSize{
		{Name: "cpu-1", Labels: map[string]string{"pool": "cpu"}, Cores: 64, MemoryMiB: 256000, DiskMiB: 500000},
		{Name: "cpu-2", Labels: map[string]string{"pool": "cpu"}, Cores: 32, MemoryMiB: 128000, DiskMiB: 500000},
		{Name: "gpu-1", Labels: map[string]string{"pool": "gpu"}, Cores: 16, MemoryMiB: 64000, GPUs: 4},
	}
	queue := func(extra string) string {
		return strings.Replace(base, `image: "pilot:1"}`, `image: "pilot:1"`+extra+`}`, 1)
	}
	cases := []struct {
		name, yaml string
		nodes      []NodeSize
		want       string // substring of the error; "" for none
	}{
		{"defaults are not judged", base, nodes, ""},
		{"fits the largest node", queue(`, limits: {maxCores: 64, maxMemoryMiB: 256000}`), nodes, ""},
		{"cores above every node", queue(`, limits: {maxCores: 1000}`), nodes, "queues[0] (atlas-prod) limits.maxCores 1000: the largest node of the cluster has 64 allocatable cores"},
		{"site memory above the selected pool", queue(`, nodeSelector: {pool: gpu}`) + "limits: {maxMemoryMiB: 100000}\n", nodes,
			"limits.maxMemoryMiB (the site's, for atlas-prod) 100000: the largest node matching {pool=gpu} of the cluster has 64000 MiB"},
		{"GPUs where no node has them", queue(`, nodeSelector: {pool: cpu}, limits: {maxGPUs: 1}`), nodes, "limits.maxGPUs 1: the largest node matching {pool=cpu} of the cluster has 0 allocatable GPUs"},
		{"selector matching no node", queue(`, nodeSelector: {pool: arm}`), nodes, "nodeSelector {pool=arm}: no node of the cluster matches"},
		{"no nodes yet", queue(`, limits: {maxCores: 1000}`), nil, ""},
		{"disk of nodes reporting none is not judged", queue(`, nodeSelector: {pool: gpu}, limits: {maxDiskMiB: 900000}`), nodes, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = s.CheckNodes(tc.nodes)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("CheckNodes: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestNodeLimitsClampToTheLargestNode(t *testing.T) {
	s, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	nodes := []NodeSize{{Name: "a", Cores: 16, MemoryMiB: 64000}, {Name: "b", Cores: 8, MemoryMiB: 128000, DiskMiB: 100000}}
	got, ok := s.NodeLimits(&s.Queues[0], nodes)
	// Defaults 128 cores, 1 TiB memory and disk, 7 days, 8 GPUs; largest node 16 cores, 128000 MiB, 100000 MiB disk, 0 GPUs.
	want := Limits{MaxCores: 16, MaxMemoryMiB: 128000, MaxWallTimeSeconds: 7 * 24 * 3600, MaxDiskMiB: 100000, MaxGPUs: 0}
	if diff := cmp.Diff(want, got); !ok || diff != "" {
		t.Errorf("NodeLimits ok=%v (-want,+got):\n%s", ok, diff)
	}
}
