package v1alpha1

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestDecodeGangArgs(t *testing.T) {
	ten, thirty := int32(10), int32(DefaultGangEventIntervalSeconds)
	cases := []struct {
		name    string
		obj     runtime.Object
		want    *GangArgs
		wantErr string
	}{
		{name: "nil gives the defaults", obj: nil,
			want: &GangArgs{DefaultScheduleTimeoutSeconds: 60, EventIntervalSeconds: &thirty, GPUResource: "nvidia.com/gpu"}},
		{name: "raw JSON, the rest defaulted", obj: &runtime.Unknown{Raw: []byte(`{"defaultScheduleTimeoutSeconds": 5, "eventIntervalSeconds": 10}`)},
			want: &GangArgs{DefaultScheduleTimeoutSeconds: 5, EventIntervalSeconds: &ten, GPUResource: "nvidia.com/gpu"}},
		{name: "typed args are copied", obj: &GangArgs{DefaultScheduleTimeoutSeconds: 7},
			want: &GangArgs{DefaultScheduleTimeoutSeconds: 7, EventIntervalSeconds: &thirty, GPUResource: "nvidia.com/gpu"}},
		{name: "unknown field", obj: &runtime.Unknown{Raw: []byte(`{"timeout": 5}`)}, wantErr: `decoding GangArgs: json: unknown field "timeout"`},
		{name: "out of range", obj: &runtime.Unknown{Raw: []byte(`{"defaultScheduleTimeoutSeconds": -1}`)}, wantErr: "defaultScheduleTimeoutSeconds: -1 is not in [1, 86400]"},
		{name: "bad resource name", obj: &runtime.Unknown{Raw: []byte(`{"gpuResource": "a b"}`)}, wantErr: `gpuResource: "a b"`},
		{name: "wrong type", obj: &PackSpreadArgs{}, wantErr: "want args of type GangArgs, got *v1alpha1.PackSpreadArgs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeGangArgs(tc.obj)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want,+got):\n%s", diff)
			}
		})
	}
	// Decoding typed args does not modify the caller's object.
	in := &GangArgs{}
	if _, err := DecodeGangArgs(in); err != nil || in.DefaultScheduleTimeoutSeconds != 0 {
		t.Errorf("the input was defaulted in place: %+v, %v", in, err)
	}
}
