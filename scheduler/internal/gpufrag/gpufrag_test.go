package gpufrag

import (
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const gi = int64(1) << 30

func TestGain(t *testing.T) {
	one := Shape{GPUs: 1, MilliCPU: 4000, Memory: 16 * gi}
	eight := Shape{GPUs: 8, MilliCPU: 32000, Memory: 128 * gi}
	oneA100 := Shape{GPUs: 1, MilliCPU: 4000, Memory: 16 * gi, Models: []string{"A100"}}
	half := func(a, b Shape) []Class { return []Class{{a, 0.5}, {b, 0.5}} }
	cases := []struct {
		name    string
		node    Node
		pod     Shape
		classes []Class
		want    float64
	}{
		{
			// Before: both classes fit, F = 0. After: 7 free, the 8-GPU class no longer fits: F = 0.5*7.
			name: "breaking a whole 8-GPU node", node: Node{GPUs: 8, MilliCPU: 96000, Memory: 512 * gi},
			pod: one, classes: half(one, eight), want: -3.5,
		},
		{
			// Before: 3 free, the 8-GPU class does not fit: F = 0.5*3 = 1.5. After: 0.5*2 = 1.
			name: "using an already broken node", node: Node{GPUs: 3, MilliCPU: 96000, Memory: 512 * gi},
			pod: one, classes: half(one, eight), want: 0.5,
		},
		{
			// Before: 0.5*8 for the A100-only class. After: 0.5*7.
			name: "unconstrained pod on a model the constrained class cannot use", node: Node{GPUs: 8, MilliCPU: 96000, Memory: 512 * gi, Model: "T4"},
			pod: one, classes: half(one, oneA100), want: 0.5,
		},
		{
			// Both classes fit before and after.
			name: "unconstrained pod on the scarce model", node: Node{GPUs: 8, MilliCPU: 96000, Memory: 512 * gi, Model: "A100"},
			pod: one, classes: half(one, oneA100), want: 0,
		},
		{
			// The pod takes 95 of 96 cores: 7 GPUs are left with 1 core, which neither class can use:
			// F 0 -> 1.0*7. (With 92 cores taken, the 1-GPU class would still fit: -3.5.)
			name: "cpu beside the GPUs", node: Node{GPUs: 8, MilliCPU: 96000, Memory: 512 * gi},
			pod: Shape{GPUs: 1, MilliCPU: 95000, Memory: gi}, classes: half(one, eight), want: -7,
		},
		{
			// A CPU-only pod that leaves 2 cores strands every free GPU: before, the 1-GPU class fits (8 cores)
			// and the 8-GPU class does not (32 cores): F = 0.5*8; after, neither fits: F = 8.
			name: "cpu-only pod on a GPU node", node: Node{GPUs: 8, MilliCPU: 8000, Memory: 512 * gi},
			pod: Shape{MilliCPU: 6000, Memory: gi}, classes: half(one, eight), want: -4,
		},
		{name: "no classes yet", node: Node{GPUs: 8, MilliCPU: 96000, Memory: 512 * gi}, pod: one, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Gain(tc.node, tc.pod, tc.classes); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("Gain = %g, want %g", got, tc.want)
			}
		})
	}
}

func TestDistribution(t *testing.T) {
	d := NewDistribution()
	if d.Classes() != nil {
		t.Fatal("empty distribution has classes")
	}
	d.Observe("a", Shape{GPUs: 1, MilliCPU: 4000, Memory: 8 * gi})
	d.Observe("a", Shape{GPUs: 1, MilliCPU: 4000, Memory: 8 * gi})  // retried: counted once
	d.Observe("b", Shape{GPUs: 1, MilliCPU: 6000, Memory: 16 * gi}) // same class (4-7 cores)
	d.Observe("c", Shape{GPUs: 8, MilliCPU: 64000, Memory: 256 * gi, Models: []string{"V100", "A100", "V100"}})
	d.Observe("d", Shape{MilliCPU: 1000}) // no GPU: ignored
	want := []Class{
		{Shape{GPUs: 1, MilliCPU: 5000, Memory: 12 * gi}, 2.0 / 3},
		{Shape{GPUs: 8, MilliCPU: 64000, Memory: 256 * gi, Models: []string{"A100", "V100"}}, 1.0 / 3},
	}
	if diff := cmp.Diff(want, d.Classes()); diff != "" {
		t.Errorf("classes (-want,+got):\n%s", diff)
	}
}

// FuzzExpected: F is between 0 and the free GPUs, and a class that fits contributes nothing.
func FuzzExpected(f *testing.F) {
	f.Add(int64(8), int64(64000), int64(3), int64(4000), uint8(2), "A100")
	f.Fuzz(func(t *testing.T, free, cpu, gpus, podCPU int64, nClasses uint8, model string) {
		d := NewDistribution()
		for i := range int64(nClasses%16) + 1 {
			s := Shape{GPUs: 1 + (gpus+i)%8, MilliCPU: max(podCPU, 0) + i*1000}
			if i%3 == 0 {
				s.Models = []string{model}
			}
			d.Observe(fmt.Sprint(i), s)
		}
		cl := d.Classes()
		sum := 0.0
		for _, c := range cl {
			sum += c.P
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Fatalf("shares sum to %g", sum)
		}
		n := Node{GPUs: free, MilliCPU: cpu, Memory: 1 << 40, Model: "T4"}
		e := Expected(n, cl)
		if free <= 0 && e != 0 || free > 0 && (e < 0 || e > float64(free)+1e-9) {
			t.Fatalf("Expected = %g with %d free GPUs", e, free)
		}
	})
}
