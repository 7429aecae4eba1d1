package inject

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestFromAnnotations(t *testing.T) {
	tests := []struct {
		name    string
		ann     map[string]string
		want    Request
		wantErr string
	}{
		{name: "none", ann: map[string]string{"other": "x"}, want: Request{}},
		{name: "cvmfs list with spaces and duplicates",
			ann:  map[string]string{CVMFSAnnotation: " atlas.cern.ch, sft.cern.ch,,atlas.cern.ch "},
			want: Request{CVMFS: []string{"atlas.cern.ch", "sft.cern.ch"}}},
		{name: "eos", ann: map[string]string{EOSAnnotation: "/eos/atlas,/eos/user/j/jdoe"},
			want: Request{EOS: []string{"/eos/atlas", "/eos/user/j/jdoe"}}},
		{name: "both", ann: map[string]string{CVMFSAnnotation: "cms.cern.ch", EOSAnnotation: "/eos/cms"},
			want: Request{CVMFS: []string{"cms.cern.ch"}, EOS: []string{"/eos/cms"}}},
		{name: "empty value", ann: map[string]string{CVMFSAnnotation: " , "}, wantErr: "no entries"},
		{name: "traversal in repository", ann: map[string]string{CVMFSAnnotation: "../etc"}, wantErr: "empty label"},
		{name: "slash in repository", ann: map[string]string{CVMFSAnnotation: "atlas.cern.ch/../../etc"}, wantErr: "lower-case DNS name"},
		{name: "upper case repository", ann: map[string]string{CVMFSAnnotation: "ATLAS.cern.ch"}, wantErr: "lower-case DNS name"},
		{name: "double dot repository", ann: map[string]string{CVMFSAnnotation: "atlas..ch"}, wantErr: "empty label"},
		{name: "eos traversal", ann: map[string]string{EOSAnnotation: "/eos/../etc"}, wantErr: "not clean"},
		{name: "eos outside", ann: map[string]string{EOSAnnotation: "/etc/passwd"}, wantErr: "must start with /eos/"},
		{name: "eos root only", ann: map[string]string{EOSAnnotation: "/eos"}, wantErr: "must start with /eos/"},
		{name: "eos trailing slash", ann: map[string]string{EOSAnnotation: "/eos/atlas/"}, wantErr: "not clean"},
		{name: "eos odd character", ann: map[string]string{EOSAnnotation: "/eos/at las"}, wantErr: "not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromAnnotations(tc.ann)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error = %v, want one wrapping ErrInvalid and containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("request (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestAddMounts(t *testing.T) {
	spec := &corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "setup"}},
		Containers:     []corev1.Container{{Name: "pilot"}, {Name: "sidecar"}},
		Volumes:        []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
	req := Request{CVMFS: []string{"sft.cern.ch", "atlas.cern.ch"}, EOS: []string{"/eos/atlas"}}
	if err := AddMounts(spec, req, Options{}); err != nil {
		t.Fatal(err)
	}
	ro := true
	prop := corev1.MountPropagationHostToContainer
	atlas, sft, eos := VolumeName(TypeCVMFS, "atlas.cern.ch"), VolumeName(TypeCVMFS, "sft.cern.ch"), VolumeName(TypeEOS, "/eos/atlas")
	wantVolumes := []corev1.Volume{
		spec.Volumes[0],
		{Name: atlas, VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: DefaultCVMFSDriver, ReadOnly: &ro,
			VolumeAttributes: map[string]string{"repository": "atlas.cern.ch"}}}},
		{Name: sft, VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: DefaultCVMFSDriver, ReadOnly: &ro,
			VolumeAttributes: map[string]string{"repository": "sft.cern.ch"}}}},
		{Name: eos, VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: DefaultEOSDriver, ReadOnly: &ro,
			VolumeAttributes: map[string]string{"type": "eos", "path": "/eos/atlas"}}}},
	}
	wantMounts := []corev1.VolumeMount{
		{Name: atlas, MountPath: "/cvmfs/atlas.cern.ch", ReadOnly: true, MountPropagation: &prop},
		{Name: sft, MountPath: "/cvmfs/sft.cern.ch", ReadOnly: true, MountPropagation: &prop},
		{Name: eos, MountPath: "/eos/atlas", ReadOnly: true, MountPropagation: &prop},
	}
	check := func(t *testing.T) {
		t.Helper()
		if diff := cmp.Diff(wantVolumes, spec.Volumes); diff != "" {
			t.Errorf("volumes (-want,+got):\n%s", diff)
		}
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			if diff := cmp.Diff(wantMounts, c.VolumeMounts); diff != "" {
				t.Errorf("mounts of %s (-want,+got):\n%s", c.Name, diff)
			}
		}
	}
	check(t)
	// Idempotent: a second call, also with the entries in another order, changes nothing.
	if err := AddMounts(spec, Request{CVMFS: []string{"atlas.cern.ch", "sft.cern.ch"}, EOS: []string{"/eos/atlas"}}, Options{}); err != nil {
		t.Fatal(err)
	}
	check(t)
}

func TestAddMountsOptionsAndConflicts(t *testing.T) {
	t.Run("drivers, no type, no init containers", func(t *testing.T) {
		spec := &corev1.PodSpec{InitContainers: []corev1.Container{{Name: "i"}}, Containers: []corev1.Container{{Name: "c"}}}
		opts := Options{CVMFSDriver: "csi.kubehtc.io", EOSDriver: "eos.example", OmitTypeAttribute: true, SkipInitContainers: true}
		if err := AddMounts(spec, Request{CVMFS: []string{"atlas.cern.ch"}, EOS: []string{"/eos/a"}}, opts); err != nil {
			t.Fatal(err)
		}
		if got := spec.Volumes[0].CSI; got.Driver != "csi.kubehtc.io" || cmp.Diff(map[string]string{"repository": "atlas.cern.ch"}, got.VolumeAttributes) != "" {
			t.Errorf("cvmfs volume = %+v", got)
		}
		if got := spec.Volumes[1].CSI; got.Driver != "eos.example" || cmp.Diff(map[string]string{"path": "/eos/a"}, got.VolumeAttributes) != "" {
			t.Errorf("eos volume = %+v", got)
		}
		if len(spec.InitContainers[0].VolumeMounts) != 0 || len(spec.Containers[0].VolumeMounts) != 2 {
			t.Errorf("mounts: init %v, container %v", spec.InitContainers[0].VolumeMounts, spec.Containers[0].VolumeMounts)
		}
	})
	conflicts := []struct {
		name    string
		spec    corev1.PodSpec
		req     Request
		wantErr string
	}{
		{name: "mount path taken",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "mine", MountPath: "/cvmfs/atlas.cern.ch/"}}}}},
			req:  Request{CVMFS: []string{"atlas.cern.ch"}}, wantErr: `already mounts volume "mine"`},
		{name: "volume name taken",
			spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: VolumeName(TypeCVMFS, "atlas.cern.ch")}}},
			req:  Request{CVMFS: []string{"atlas.cern.ch"}}, wantErr: "different volume"},
		{name: "invalid repository", req: Request{CVMFS: []string{"a/../b"}}, wantErr: "lower-case DNS name"},
		{name: "invalid path", req: Request{EOS: []string{"/eos/a/../../etc"}}, wantErr: "not clean"},
	}
	for _, tc := range conflicts {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.spec.DeepCopy()
			err := AddMounts(&tc.spec, tc.req, Options{})
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want ErrInvalid containing %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(before, &tc.spec); diff != "" {
				t.Errorf("spec changed on error (-before,+after):\n%s", diff)
			}
		})
	}
	if err := AddMounts(nil, Request{}, Options{}); err == nil {
		t.Error("nil spec: no error")
	}
}

func TestVolumeName(t *testing.T) {
	a, b := VolumeName(TypeCVMFS, "atlas.cern.ch"), VolumeName(TypeCVMFS, "atlas-cern.ch")
	if a == b {
		t.Errorf("atlas.cern.ch and atlas-cern.ch share volume name %q", a)
	}
	if !strings.HasPrefix(a, "kubehtc-cvmfs-atlas-cern-ch-") {
		t.Errorf("name %q is not readable", a)
	}
	long := VolumeName(TypeEOS, "/eos/"+strings.Repeat("verylongdirectory/", 20))
	if errs := validation.IsDNS1123Label(long); len(errs) > 0 {
		t.Errorf("%q: %v", long, errs)
	}
}

// FuzzFromAnnotations checks that whatever FromAnnotations accepts can be mounted: every repository and
// path is valid, stays under its root, and AddMounts produces valid, idempotent volumes.
func FuzzFromAnnotations(f *testing.F) {
	for _, seed := range [][2]string{
		{"atlas.cern.ch,sft.cern.ch", "/eos/atlas"},
		{"../x", "/eos/../etc"},
		{" a.b , a.b ", "/eos/user/j/jdoe,/eos/x+y"},
		{"unpacked.cern.ch", "/eos//a"},
		{"a_b.c-d", "/eos/./a"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, cvmfs, eos string) {
		req, err := FromAnnotations(map[string]string{CVMFSAnnotation: cvmfs, EOSAnnotation: eos})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		for _, r := range req.CVMFS {
			if strings.ContainsAny(r, "/\\ ") || strings.Contains(r, "..") || r != strings.TrimSpace(r) {
				t.Fatalf("accepted repository %q", r)
			}
		}
		for _, p := range req.EOS {
			if !strings.HasPrefix(p, "/eos/") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "//") {
				t.Fatalf("accepted path %q", p)
			}
		}
		spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}
		if err := AddMounts(spec, req, Options{}); err != nil {
			t.Fatalf("AddMounts of an accepted request: %v", err)
		}
		once := spec.DeepCopy()
		if err := AddMounts(spec, req, Options{}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(once, spec); diff != "" {
			t.Fatalf("second AddMounts changed the spec (-first,+second):\n%s", diff)
		}
		for _, v := range spec.Volumes {
			if errs := validation.IsDNS1123Label(v.Name); len(errs) > 0 {
				t.Fatalf("volume name %q: %v", v.Name, errs)
			}
		}
		if n := len(req.CVMFS) + len(req.EOS); len(spec.Volumes) != n || len(spec.Containers[0].VolumeMounts) != n {
			t.Fatalf("%d entries gave %d volumes and %d mounts", n, len(spec.Volumes), len(spec.Containers[0].VolumeMounts))
		}
	})
}
