package simframework

import (
	"context"
	"errors"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubehtc/kubehtc/internal/localcluster"
)

func pod(name, profile, cpu string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)},
		Spec: v1.PodSpec{SchedulerName: profile, Containers: []v1.Container{{
			Name:      "c",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}},
		}}},
	}
}

// TestFillsAndFrees fills two 4-core nodes with 1-core pods on each profile: the ninth does not fit until one
// finishes. Both profiles must also place pods where their scoring says: the default profile spreads (the
// first two pods on different nodes), kubehtc's packs batch pods (the first two on the same node).
func TestFillsAndFrees(t *testing.T) {
	profiles, err := Profiles()
	if err != nil {
		t.Fatal(err)
	}
	wantSameNode := map[string]bool{"default-scheduler": false, "kubehtc": true}
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			ctx := context.Background()
			s, err := New(ctx, profile, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			t.Logf("disabled without an API server: %v", s.Disabled())
			for _, n := range localcluster.UniformNodePools(2, "4", "16Gi").Nodes() {
				s.AddNode(n)
			}
			var bound []*v1.Pod
			for i := range 8 {
				b, err := s.Schedule(ctx, pod(fmt.Sprintf("p%d", i), profile, "1"))
				if err != nil {
					t.Fatalf("pod %d: %v", i, err)
				}
				bound = append(bound, b...)
			}
			if want, ok := wantSameNode[profile]; ok {
				if got := bound[0].Spec.NodeName == bound[1].Spec.NodeName; got != want {
					t.Errorf("first two pods on %s and %s; same node = %v, want %v", bound[0].Spec.NodeName, bound[1].Spec.NodeName, got, want)
				}
			}
			if _, err := s.Schedule(ctx, pod("p8", profile, "1")); !errors.Is(err, ErrUnschedulable) {
				t.Fatalf("ninth pod on a full cluster: err = %v, want ErrUnschedulable", err)
			}
			if err := s.Remove(bound[3]); err != nil {
				t.Fatal(err)
			}
			b, err := s.Schedule(ctx, pod("p8", profile, "1"))
			if err != nil {
				t.Fatalf("ninth pod after one finished: %v", err)
			}
			if len(b) != 1 {
				t.Fatalf("ninth pod: %d pods bound, want 1", len(b))
			}
			if b[0].Spec.NodeName != bound[3].Spec.NodeName {
				t.Errorf("ninth pod on %s, want the freed node %s", b[0].Spec.NodeName, bound[3].Spec.NodeName)
			}
		})
	}
}
