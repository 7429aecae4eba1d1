package translate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// TestPodSessionVolume: where /session and the inputs come from, for ConfigMap inputs (gRPC) and for
// inputs staged in the ARC REST session store, with and without a session volume claim.
func TestPodSessionVolume(t *testing.T) {
	staged := func(gj *kubehtcv1alpha1.GridJob) {
		gj.Annotations = map[string]string{SessionInputsAnnotation: SessionInputsReady}
	}
	withInputs := func(gj *kubehtcv1alpha1.GridJob) { gj.Spec.Description.Inputs = []string{"in.dat"} }
	cases := []struct {
		name        string
		gj          *kubehtcv1alpha1.GridJob
		opts        PodOptions
		wantSession corev1.VolumeSource
		wantSubPath string
		wantInputs  bool // the inputs ConfigMap is mounted
	}{
		{name: "gRPC job with inputs", gj: pilot(withInputs), wantSession: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}, wantInputs: true},
		{name: "ARC job, no session claim (local cluster)", gj: pilot(func(gj *kubehtcv1alpha1.GridJob) { withInputs(gj); staged(gj) }),
			wantSession: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{name: "ARC job on the shared session volume", gj: pilot(func(gj *kubehtcv1alpha1.GridJob) { withInputs(gj); staged(gj) }), opts: PodOptions{SessionClaimName: "arc-sessions"},
			wantSession: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "arc-sessions"}}, wantSubPath: "atlas/gj-abc/session"},
		{name: "gRPC job ignores the session claim", gj: pilot(withInputs), opts: PodOptions{SessionClaimName: "arc-sessions"},
			wantSession: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}, wantInputs: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod, err := Pod(tc.gj, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var session *corev1.Volume
			inputs := false
			for i, v := range pod.Spec.Volumes {
				switch v.Name {
				case "session":
					session = &pod.Spec.Volumes[i]
				case "inputs":
					inputs = true
				}
			}
			if session == nil {
				t.Fatal("no session volume")
			}
			if diff := cmp.Diff(tc.wantSession, session.VolumeSource); diff != "" {
				t.Errorf("session volume (-want,+got):\n%s", diff)
			}
			c := pod.Spec.Containers[0]
			for _, m := range c.VolumeMounts {
				if m.Name == "session" && (m.MountPath != SessionDir || m.SubPath != tc.wantSubPath) {
					t.Errorf("session mount %s subPath %q, want %s subPath %q", m.MountPath, m.SubPath, SessionDir, tc.wantSubPath)
				}
			}
			if inputs != tc.wantInputs || hasMount(c, InputsDir) != tc.wantInputs {
				t.Errorf("inputs ConfigMap mounted %v, want %v", inputs, tc.wantInputs)
			}
		})
	}
}
