package v1alpha1

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestDecodeFairShareArgs(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name    string
		obj     runtime.Object
		want    *FairShareArgs
		wantErr bool
	}{
		{name: "nil: defaults", obj: nil, want: &FairShareArgs{Reclaim: &yes, MaxReclaimVictims: DefaultMaxReclaimVictims}},
		{name: "raw", obj: &runtime.Unknown{Raw: []byte(`{"reclaim":false,"maxReclaimVictims":4}`)}, want: &FairShareArgs{Reclaim: &no, MaxReclaimVictims: 4}},
		{name: "unknown field", obj: &runtime.Unknown{Raw: []byte(`{"halfLife":"1h"}`)}, wantErr: true},
		{name: "negative victims", obj: &FairShareArgs{MaxReclaimVictims: -1}, wantErr: true},
		{name: "wrong type", obj: &PackSpreadArgs{}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeFairShareArgs(tc.obj)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want,+got):\n%s", diff)
			}
		})
	}
}
