package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubehtc/kubehtc/csi/driver"
)

// TestManifests parses every document of deploy/csi strictly into its type, and checks that the pieces
// agree: driver name, socket path, kubelet directory and the config the DaemonSet ships.
func TestManifests(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "csi", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	kinds := map[string]int{}
	var ds *appsv1.DaemonSet
	var cm *corev1.ConfigMap
	var csiDriver *storagev1.CSIDriver
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(data, []byte("\n---\n")) {
			var meta struct{ Kind string }
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var obj any
			switch meta.Kind {
			case "CSIDriver":
				csiDriver = &storagev1.CSIDriver{}
				obj = csiDriver
			case "DaemonSet":
				ds = &appsv1.DaemonSet{}
				obj = ds
			case "ConfigMap":
				cm = &corev1.ConfigMap{}
				obj = cm
			case "MutatingWebhookConfiguration":
				obj = &admissionregistrationv1.MutatingWebhookConfiguration{}
			case "Namespace":
				obj = &corev1.Namespace{}
			case "ServiceAccount":
				obj = &corev1.ServiceAccount{}
			case "ClusterRole":
				obj = &rbacv1.ClusterRole{}
			case "ClusterRoleBinding":
				obj = &rbacv1.ClusterRoleBinding{}
			default:
				t.Fatalf("%s: unexpected kind %q", f, meta.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s (%s): %v", f, meta.Kind, err)
			}
			kinds[meta.Kind]++
		}
	}
	if csiDriver == nil || ds == nil || cm == nil || kinds["MutatingWebhookConfiguration"] != 1 || kinds["ClusterRole"] != 1 {
		t.Fatalf("missing manifests: %v", kinds)
	}
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := driver.LoadConfig(cfgFile)
	if err != nil {
		t.Fatalf("shipped config: %v", err)
	}
	if cfg.DriverName != csiDriver.Name {
		t.Errorf("config driver %q, CSIDriver %q", cfg.DriverName, csiDriver.Name)
	}
	spec := ds.Spec.Template.Spec
	registrar := strings.Join(spec.Containers[1].Args, " ")
	if want := cfg.KubeletDir + "/plugins/" + csiDriver.Name + "/csi.sock"; !strings.Contains(registrar, want) {
		t.Errorf("registrar args %q lack %s", registrar, want)
	}
	var kubeletMount bool
	for _, m := range spec.Containers[0].VolumeMounts {
		if m.MountPath == cfg.KubeletDir {
			kubeletMount = m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional
		}
	}
	if !kubeletMount {
		t.Errorf("the plugin does not mount %s with Bidirectional propagation", cfg.KubeletDir)
	}
}
