package version

import (
	"os"
	"regexp"
	"testing"

	utilversion "k8s.io/apimachinery/pkg/util/version"
	componentversion "k8s.io/component-base/version"
)

// TestEnsureKubernetesVersion: `go test` does not stamp -ldflags, so component-base starts with its
// unparseable placeholder; afterwards it reports the Kubernetes version go.mod requires.
func TestEnsureKubernetesVersion(t *testing.T) {
	if _, err := utilversion.ParseSemantic(componentversion.Get().GitVersion); err == nil {
		t.Fatalf("component-base GitVersion %q already parses: is this test binary stamped?", componentversion.Get().GitVersion)
	}
	EnsureKubernetesVersion()
	got := componentversion.Get().GitVersion
	if got != KubernetesRequired {
		t.Errorf("component-base GitVersion = %q, want %q", got, KubernetesRequired)
	}
	if _, err := utilversion.ParseSemantic(got); err != nil {
		t.Errorf("GitVersion %q does not parse: %v", got, err)
	}
	EnsureKubernetesVersion()
	if again := componentversion.Get().GitVersion; again != got {
		t.Errorf("second call changed GitVersion %q -> %q", got, again)
	}
	if k := Get().Kubehtc; k == "" {
		t.Error("Kubehtc version is empty")
	}
}

// TestKubernetesRequiredMatchesGoMod: bumping k8s.io/kubernetes in go.mod must bump KubernetesRequired.
func TestKubernetesRequiredMatchesGoMod(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/kubernetes (v\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod does not require k8s.io/kubernetes")
	}
	if string(m[1]) != KubernetesRequired {
		t.Errorf("go.mod requires k8s.io/kubernetes %s, KubernetesRequired is %s", m[1], KubernetesRequired)
	}
}
