package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubehtc/kubehtc/snapshotter"
)

// TestManifests parses deploy/snapshotter strictly and checks that the pieces agree: the ConfigMap holds what
// `kubehtc snapshotter config` renders from deploy/snapshotter/site.yaml, and the DaemonSet selects the
// lazy-pull label, mounts the node's root and the node files where its arguments say.
func TestManifests(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "snapshotter")
	data, err := os.ReadFile(filepath.Join(dir, "kubehtc-snapshotter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds *appsv1.DaemonSet
	var cm *corev1.ConfigMap
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		// The separator took the document's last newline (a block scalar's, for the ConfigMap).
		doc = append(doc, '\n')
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		var obj any
		switch meta.Kind {
		case "DaemonSet":
			ds = &appsv1.DaemonSet{}
			obj = ds
		case "ConfigMap":
			cm = &corev1.ConfigMap{}
			obj = cm
		case "Namespace":
			obj = &corev1.Namespace{}
		default:
			t.Fatalf("unexpected kind %q", meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s: %v", meta.Kind, err)
		}
	}
	if ds == nil || cm == nil {
		t.Fatal("want a DaemonSet and a ConfigMap")
	}

	siteData, err := os.ReadFile(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	site, err := snapshotter.ParseSite(siteData)
	if err != nil {
		t.Fatal(err)
	}
	wantCfg, err := snapshotter.RenderSnapshotterConfig(&site.Snapshotter)
	if err != nil {
		t.Fatal(err)
	}
	wantFrag, err := snapshotter.RenderContainerd(site, snapshotter.Containerd2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantCfg, cm.Data["config.toml"]); diff != "" {
		t.Errorf("ConfigMap config.toml differs from the rendering of site.yaml (-rendered,+manifest):\n%s", diff)
	}
	if diff := cmp.Diff(wantFrag, cm.Data["containerd.toml"]); diff != "" {
		t.Errorf("ConfigMap containerd.toml differs from the rendering of site.yaml (-rendered,+manifest):\n%s", diff)
	}

	spec := ds.Spec.Template.Spec
	if spec.NodeSelector["kubehtc.io/lazy-pull"] != "true" {
		t.Errorf("nodeSelector = %v, want kubehtc.io/lazy-pull=true", spec.NodeSelector)
	}
	if len(spec.InitContainers) != 1 || !slices.Contains(spec.InitContainers[0].Args, "-mode=install") {
		t.Fatalf("want one init container in install mode, got %+v", spec.InitContainers)
	}
	inst := spec.InitContainers[0]
	if inst.SecurityContext == nil || inst.SecurityContext.Privileged == nil || !*inst.SecurityContext.Privileged {
		t.Error("the install container must be privileged (node files, chrooted systemctl)")
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m.Name
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("%s mounts unknown volume %q", c.Name, m.Name)
			}
		}
		for _, a := range c.Args {
			switch {
			case strings.HasPrefix(a, "-config="):
				if mounts[filepath.Dir(strings.TrimPrefix(a, "-config="))] != "node-files" {
					t.Errorf("%s: %s is not in the mounted ConfigMap", c.Name, a)
				}
			case strings.HasPrefix(a, "-host-root="):
				root := strings.TrimPrefix(a, "-host-root=")
				// The socket directory of the config, under the host root, must be visible to the container.
				sock := filepath.Join(root, filepath.Dir(site.Snapshotter.Address))
				if mounts[root] != "host" && mounts[sock] == "" {
					t.Errorf("%s: neither %s nor %s is mounted", c.Name, root, sock)
				}
			}
		}
	}
	if v := volumes["host"]; v.HostPath == nil || v.HostPath.Path != "/" {
		t.Errorf("volume host = %+v, want hostPath /", v)
	}
	if v := volumes["host-run"]; v.HostPath == nil || v.HostPath.Path != filepath.Dir(site.Snapshotter.Address) {
		t.Errorf("volume host-run = %+v, want hostPath %s", v, filepath.Dir(site.Snapshotter.Address))
	}
}
