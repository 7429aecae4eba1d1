// Package version tells which kubehtc and which Kubernetes a binary was built from.
//
// Release builds (make build, hack/version.sh) stamp both through -ldflags -X: kubehtc's own version (git
// describe) into this package, and Kubernetes' version into k8s.io/component-base/version, which the embedded
// kube-apiserver reports at /version and kubectl parses. A plain `go build` or `go test` stamps neither;
// EnsureKubernetesVersion then replaces component-base's placeholder ("v0.0.0-master+$Format:%H$", which no
// client can parse) with the version of the k8s.io/kubernetes module the binary was linked with.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	_ "unsafe" // go:linkname

	utilversion "k8s.io/apimachinery/pkg/util/version"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	componentversion "k8s.io/component-base/version"
)

// version is kubehtc's version, set by hack/version.sh: -X github.com/kubehtc/kubehtc/internal/version.version=...
var version string

// kubernetesModule is the module whose version is the Kubernetes version of the embedded control plane.
const kubernetesModule = "k8s.io/kubernetes"

// KubernetesRequired is the k8s.io/kubernetes version go.mod requires (a test keeps the two equal). It is the
// fallback of LinkedKubernetes when the build info has no dependencies, as in test binaries.
const KubernetesRequired = "v1.37.1"

// Info is what `kubehtc version` prints.
type Info struct {
	// Kubehtc is kubehtc's version: `git describe --always --dirty` of the build, or the Go module version Go
	// stamped into an unstamped build, or "devel".
	Kubehtc string `json:"kubehtc"`
	// Kubernetes is the Kubernetes version of the embedded control plane and scheduler framework, as the
	// apiserver reports it.
	Kubernetes apimachineryversion.Info `json:"kubernetes"`
	// GoVersion and Platform describe the build.
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the versions of this binary, after EnsureKubernetesVersion.
func Get() Info {
	EnsureKubernetesVersion()
	return Info{
		Kubehtc:    Kubehtc(),
		Kubernetes: componentversion.Get(),
		GoVersion:  runtime.Version(),
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// String is the one-line form, e.g. "kubehtc v0.3.0-12-gabc1234 (Kubernetes v1.37.1, go1.26.8 linux/amd64)".
func (i Info) String() string {
	return fmt.Sprintf("kubehtc %s (Kubernetes %s, %s %s)", i.Kubehtc, i.Kubernetes.GitVersion, i.GoVersion, i.Platform)
}

// Kubehtc returns kubehtc's version: the stamped one, else the main module's version that Go records from
// the VCS (a pseudo-version, "+dirty" for local changes), else "devel".
func Kubehtc() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// dynamicGitVersion is component-base's GitVersion override (k8s.io/component-base/version/dynamic.go).
// Its public setter, SetDynamicVersion, only accepts versions with the placeholder's major.minor.patch (0.0.0),
// so an unstamped build reaches it directly. Should component-base rename it, linking fails: loud, not silent.
//
//go:linkname dynamicGitVersion k8s.io/component-base/version.dynamicGitVersion
var dynamicGitVersion atomic.Value

// EnsureKubernetesVersion makes component-base report a parseable Kubernetes version: if the build was not
// stamped (its GitVersion does not parse as semver), it sets GitVersion to LinkedKubernetes(). A stamped
// build is left alone. Safe to call more than once and concurrently.
func EnsureKubernetesVersion() {
	if _, err := utilversion.ParseSemantic(componentversion.Get().GitVersion); err == nil {
		return
	}
	if v := LinkedKubernetes(); v != "" {
		dynamicGitVersion.Store(v)
	}
}

// LinkedKubernetes returns the Kubernetes version this binary was linked with: the k8s.io/kubernetes module's
// version from the build info, else KubernetesRequired (test binaries record no dependencies).
func LinkedKubernetes() string {
	if v := moduleVersion(kubernetesModule); v != "" {
		return v
	}
	return KubernetesRequired
}

// moduleVersion returns the version of a module linked into this binary ("" if unknown), following a replace.
func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path != path {
			continue
		}
		if m.Replace != nil && m.Replace.Version != "" {
			m = m.Replace
		}
		if _, err := utilversion.ParseSemantic(m.Version); err != nil {
			return ""
		}
		return m.Version
	}
	return ""
}
