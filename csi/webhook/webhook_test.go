package webhook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubehtc/kubehtc/csi/inject"
)

func handle(t *testing.T, pod *corev1.Pod) admission.Response {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	m := &Mounts{Options: inject.Options{EOSDriver: "eos.example"}, Decoder: admission.NewDecoder(scheme)}
	return m.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
	}})
}

func TestHandle(t *testing.T) {
	pod := func(ann map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: ann},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
	}
	t.Run("annotated", func(t *testing.T) {
		resp := handle(t, pod(map[string]string{"kubehtc.io/cvmfs": "atlas.cern.ch", "kubehtc.io/eos": "/eos/atlas"}))
		if !resp.Allowed {
			t.Fatalf("denied: %v", resp.Result)
		}
		patch, _ := json.Marshal(resp.Patches)
		for _, want := range []string{`"/spec/volumes"`, `"cvmfs.csi.cern.ch"`, `"eos.example"`, `"HostToContainer"`, `"/cvmfs/atlas.cern.ch"`, `"/eos/atlas"`} {
			if !strings.Contains(string(patch), want) {
				t.Errorf("patch %s lacks %s", patch, want)
			}
		}
	})
	t.Run("unannotated", func(t *testing.T) {
		resp := handle(t, pod(map[string]string{"other": "x"}))
		if !resp.Allowed || len(resp.Patches) != 0 {
			t.Errorf("allowed %t, patches %v: want allowed and untouched", resp.Allowed, resp.Patches)
		}
	})
	t.Run("bad annotation", func(t *testing.T) {
		resp := handle(t, pod(map[string]string{"kubehtc.io/cvmfs": "../../etc"}))
		if resp.Allowed || !strings.Contains(resp.Result.Message, "kubehtc mount injection") || !strings.Contains(resp.Result.Message, "../../etc") {
			t.Errorf("allowed %t, message %q: want a denial naming the bad repository", resp.Allowed, resp.Result.Message)
		}
	})
}
