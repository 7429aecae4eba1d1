package telemetry

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestReport(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{
		"keep": "me", EOSAnnotation: "/eos/stale"}}})
	var cvmfs, eos []string
	var listErr error
	r := &Reporter{Client: cs, NodeName: "n1", List: func() ([]string, []string, error) { return cvmfs, eos, listErr }}
	annotations := func() map[string]string {
		n, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n.Annotations
	}
	patches := func() int {
		n := 0
		for _, a := range cs.Actions() {
			if a.GetVerb() == "patch" {
				n++
			}
		}
		return n
	}

	cvmfs = []string{"atlas.cern.ch", "sft.cern.ch"}
	if err := r.Report(ctx); err != nil {
		t.Fatal(err)
	}
	// The first report replaces the stale EOS list left by a previous driver.
	if diff := cmp.Diff(map[string]string{"keep": "me", CVMFSAnnotation: "atlas.cern.ch,sft.cern.ch"}, annotations()); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	if err := r.Report(ctx); err != nil {
		t.Fatal(err)
	}
	if got := patches(); got != 1 {
		t.Errorf("%d patches after an unchanged report, want 1", got)
	}
	cvmfs, eos = nil, []string{"/eos/atlas"}
	if err := r.Report(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"keep": "me", EOSAnnotation: "/eos/atlas"}, annotations()); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	listErr = errors.New("boom")
	if err := r.Report(ctx); err == nil {
		t.Error("list error not reported")
	}
	r.NodeName = "missing"
	listErr, eos = nil, []string{"/eos/cms"}
	if err := r.Report(ctx); err == nil {
		t.Error("patching a missing node: no error")
	}
}
