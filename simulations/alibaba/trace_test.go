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
		"name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time",
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
	podCases := []struct{ name, csv, want string }{
		{"negative creation time", fullHeader + "\np,1,1,1,1000,,LS,Running,-5,0,0\n", "line 2: creation_time: -5 is negative"},
		{"missing num_gpu", "name,cpu_milli,memory_mib,gpu_milli\np,1,1,1000\n",
			"missing column(s) num_gpu; required: name,cpu_milli,memory_mib,num_gpu,gpu_milli"},
		{"missing two", "name,cpu_milli\np,1\n", "missing column(s) memory_mib,num_gpu,gpu_milli"},
		{"duplicate column", "name,cpu_milli,memory_mib,num_gpu,gpu_milli,num_gpu\np,1,1,1,1000,1\n", `column "num_gpu" appears twice`},
		{"bad gpu_milli", short + "\np,1,1,1,half\n", `line 2: gpu_milli: "half" is not an integer`},
		{"empty", "", "reading header"},
	}
	for _, tc := range podCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePods(strings.NewReader(tc.csv))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

const (
	fullHeader = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time"
	short      = "name,cpu_milli,memory_mib,num_gpu,gpu_milli"
)

// TestParseLayouts: the 5-column form and a reordered full form read the same pods; without times they keep
// file order (here deliberately not sorted by name).
func TestParseLayouts(t *testing.T) {
	want := []Pod{
		{Name: "z", MilliCPU: 6000, MemoryMiB: 12288, GPUs: 1, GPUMilli: 460},
		{Name: "a", MilliCPU: 88000, MemoryMiB: 327680, GPUs: 8, GPUMilli: 1000},
		{Name: "m", MilliCPU: 4000, MemoryMiB: 8192},
	}
	cases := []struct{ name, csv string }{
		{"five columns", short + "\nz,6000,12288,1,460\na,88000,327680,8,1000\nm,4000,8192,0,0\n"},
		{"reordered, extra column", "num_gpu,gpu_milli,name,memory_mib,cpu_milli,note\n1,460,z,12288,6000,x\n8,1000,a,327680,88000,y\n0,0,m,8192,4000,z\n"},
		{"CRLF", strings.ReplaceAll(short+"\nz,6000,12288,1,460\na,88000,327680,8,1000\nm,4000,8192,0,0\n", "\n", "\r\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePods(strings.NewReader(tc.csv))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("pods (-want,+got):\n%s", diff)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,8,V100M32\n")
	f.Add(fullHeader + "\np,1000,1024,1,500,A10|T4,LS,Running,3,9,3\nq,1,1,0,0,,BE,Running,1,9,1\n")
	f.Add(short + "\np,1000,1024,1,500\nq,2000,1024,2,1000\n")
	f.Add("gpu_milli,num_gpu,memory_mib,cpu_milli,name\n1000,1,1,1,x\n")
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
			for i, p := range pods {
				if i > 0 && p.Creation < pods[i-1].Creation {
					t.Fatal("pods not in creation order")
				}
				if p.Name == "" || p.MilliCPU < 0 || p.MemoryMiB < 0 || p.WholeGPUs() < 0 || p.MilliGPUs() < 0 {
					t.Fatalf("parsed an invalid pod %+v", p)
				}
			}
		} else if !strings.Contains(err.Error(), "header") && !strings.Contains(err.Error(), "line ") {
			t.Fatalf("error names neither the header nor a line: %v", err)
		}
	})
}
