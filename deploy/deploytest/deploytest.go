// Package deploytest renders kubehtc's install manifests — the Helm chart deploy/charts/kubehtc and the kustomize
// tree deploy/kustomize — the way a site does (the helm CLI that hack/ensure-helm.sh builds, kustomize's own
// library), and decodes them into objects. Its tests apply them to the local cluster's API server; other
// packages' tests use it to check what the chart gives their binary (cmd/kubehtc-scheduler: the scheduler
// configuration).
package deploytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const (
	// Release is the Helm release name the tests and hack/manifests.sh render with.
	Release = "kubehtc"
	// Namespace is the release namespace.
	Namespace = "kubehtc-system"
)

// Root returns the repository's root directory (this file is deploy/deploytest/deploytest.go).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Chart returns the chart's directory.
func Chart() string { return filepath.Join(Root(), "deploy", "charts", "kubehtc") }

// AllComponentsValues returns the values file with every component on (a CERN-like site).
func AllComponentsValues() string { return filepath.Join(Chart(), "ci", "all-components-values.yaml") }

// Helm returns the path of the helm CLI built by hack/ensure-helm.sh.
func Helm() (string, error) {
	p := filepath.Join(Root(), "bin", "tools", "helm")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("helm is not built (run hack/ensure-helm.sh; make test does): %w", err)
	}
	return p, nil
}

// RenderChart runs `helm template` on the chart as release Release in Namespace with extra arguments (-f
// FILE, --set K=V, --include-crds) and returns the manifests.
func RenderChart(args ...string) ([]byte, error) {
	helm, err := Helm()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(helm, append([]string{"template", Release, Chart(), "--namespace", Namespace}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template %v: %w: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// Kustomize builds the kustomization in dir with kustomize's library (what `kubectl kustomize` runs).
func Kustomize(dir string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	return m.AsYaml()
}

// Decode splits multi-document YAML into objects, skipping empty documents.
func Decode(manifests []byte) ([]*unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decoding manifests: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("document without apiVersion or kind: %v", m)
		}
		objs = append(objs, u)
	}
}

// Find returns the object of kind and name (any namespace), or nil.
func Find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// ConfigMapData returns key of the data of ConfigMap name in objs.
func ConfigMapData(objs []*unstructured.Unstructured, name, key string) (string, error) {
	cm := Find(objs, "ConfigMap", name)
	if cm == nil {
		return "", fmt.Errorf("no ConfigMap %s", name)
	}
	v, ok, err := unstructured.NestedString(cm.Object, "data", key)
	if err != nil || !ok {
		return "", fmt.Errorf("ConfigMap %s has no data key %s (%v)", name, key, err)
	}
	return v, nil
}
