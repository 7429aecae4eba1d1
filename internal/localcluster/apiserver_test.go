package localcluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFeatureGateArgs(t *testing.T) {
	cases := []struct {
		name  string
		gates map[string]bool
		want  []string
	}{
		{name: "no gates, no flags", gates: nil, want: nil},
		{name: "empty map, no flags", gates: map[string]bool{}, want: nil},
		{
			name:  "GenericWorkload on serves scheduling.k8s.io/v1beta1",
			gates: map[string]bool{"GenericWorkload": true},
			want:  []string{"--feature-gates=GenericWorkload=true", "--runtime-config=scheduling.k8s.io/v1beta1=true"},
		},
		{
			name:  "GenericWorkload off turns no API version on",
			gates: map[string]bool{"GenericWorkload": false},
			want:  []string{"--feature-gates=GenericWorkload=false"},
		},
		{
			name:  "gates sorted by name, whatever the map order",
			gates: map[string]bool{"TopologyAwareWorkloadScheduling": true, "GenericWorkload": true, "CompositePodGroup": false},
			want: []string{
				"--feature-gates=CompositePodGroup=false,GenericWorkload=true,TopologyAwareWorkloadScheduling=true",
				"--runtime-config=scheduling.k8s.io/v1beta1=true",
			},
		},
		{
			name:  "gate without an API version of its own",
			gates: map[string]bool{"SchedulerAsyncPreemption": false},
			want:  []string{"--feature-gates=SchedulerAsyncPreemption=false"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Several calls: the rendering must not depend on map iteration order.
			for range 5 {
				if diff := cmp.Diff(tc.want, featureGateArgs(tc.gates)); diff != "" {
					t.Fatalf("featureGateArgs (-want,+got):\n%s", diff)
				}
			}
		})
	}
}
