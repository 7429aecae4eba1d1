package alibaba

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	nodes, err := ParseNodes(strings.NewReader("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,32000,262144,0,\nn2,64000,262144,2,P100\n"))
	if err != nil {
		t.Fatal(err)
	}
	pools := NodePools(nodes)
	if len(pools.Pools) != 2 || pools.Pools[0].Count != 2 || pools.Pools[0].GPUs != 2 || pools.Pools[1].GPUs != 0 {
		t.Errorf("pools %+v", pools.Pools)
	}
	if err := pools.Validate(); err != nil {
		t.Errorf("pools from the trace are invalid: %v", err)
	}
	pods, err := ParsePods(strings.NewReader(strings.Join([]string{
		strings.Join(podHeader, ","),
		"b,1000,1024,1,460,V100M16|V100M32,LS,Running,20,100,20",
		"a,2000,2048,0,0,,BE,Running,10,100,10",
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	want := []Pod{
		{Name: "a", MilliCPU: 2000, MemoryMiB: 2048, Creation: 10},
		{Name: "b", MilliCPU: 1000, MemoryMiB: 1024, GPUs: 1, GPUMilli: 460, Models: []string{"V100M16", "V100M32"}, Creation: 20},
	}
	if diff := cmp.Diff(want, pods); diff != "" {
		t.Errorf("pods in creation order (-want,+got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, csv, want string }{
		{"bad header", "sn,cpu\nx,1\n", "header"},
		{"short row", "sn,cpu_milli,memory_mib,gpu,model\nn0,1000,10\n", "line 2"},
		{"not a number", "sn,cpu_milli,memory_mib,gpu,model\nn0,lots,10,0,\n", `line 2: cpu_milli: "lots" is not an integer`},
		{"negative gpus", "sn,cpu_milli,memory_mib,gpu,model\nn0,1000,10,-1,V100\n", "gpu: -1 is negative"},
		{"gpu without model", "sn,cpu_milli,memory_mib,gpu,model\nn0,1000,10,2,\n", "model: empty"},
		{"zero cpu", "sn,cpu_milli,memory_mib,gpu,model\nn0,0,10,0,\n", "cpu_milli: must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseNodes(strings.NewReader(tc.csv))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := ParsePods(strings.NewReader(strings.Join(podHeader, ",") + "\np,1,1,1,1000,,LS,Running,-5,0,0\n")); err == nil || !strings.Contains(err.Error(), "creation_time: -5 is negative") {
		t.Errorf("negative creation time: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,8,V100M32\n")
	f.Add(strings.Join(podHeader, ",") + "\np,1000,1024,1,500,A10|T4,LS,Running,3,9,3\n")
	f.Fuzz(func(t *testing.T, data string) {
		if nodes, err := ParseNodes(strings.NewReader(data)); err == nil {
			// Whatever parses builds valid pools.
			if len(nodes) > 0 && len(nodes) < 1000 {
				if err := NodePools(nodes).Validate(); err != nil && !strings.Contains(err.Error(), "label value") {
					t.Fatalf("parsed nodes build invalid pools: %v", err)
				}
			}
		}
		if pods, err := ParsePods(strings.NewReader(data)); err == nil {
			for i := 1; i < len(pods); i++ {
				if pods[i].Creation < pods[i-1].Creation {
					t.Fatal("pods not in creation order")
				}
			}
		}
	})
}
