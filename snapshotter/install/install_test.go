package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubehtc/kubehtc/snapshotter"
)

// nodeFiles writes the rendered node files of a default site into a ConfigMap-like directory.
func nodeFiles(t *testing.T, v snapshotter.ContainerdVersion, restart []string) string {
	t.Helper()
	site := &snapshotter.Site{Snapshotter: snapshotter.Config{ContainerdRestartCommand: restart}}
	site.SetDefaults()
	files, err := snapshotter.NodeFiles(site, v)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range files {
		name := "config.toml"
		if f.Path == snapshotter.ContainerdFragmentPath {
			name = "containerd.toml"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(f.Content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestInstall(t *testing.T) {
	all := []string{BinaryPath, snapshotter.SnapshotterConfigPath, snapshotter.ContainerdFragmentPath, UnitPath, ContainerdDropInPath}
	cases := []struct {
		name             string
		version          snapshotter.ContainerdVersion
		containerdConfig string // node's config.toml; empty: none
		wantErr          string
	}{
		{name: "containerd 2 without config.toml (imports conf.d by default)", version: snapshotter.Containerd2},
		{name: "containerd 1 importing conf.d", version: snapshotter.Containerd1,
			containerdConfig: "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n"},
		{name: "containerd 1 without imports", version: snapshotter.Containerd1,
			containerdConfig: "version = 2\n", wantErr: "has no imports"},
		{name: "containerd 1 without config.toml", version: snapshotter.Containerd1, wantErr: "create it with imports"},
		{name: "containerd 2 importing elsewhere", version: snapshotter.Containerd2,
			containerdConfig: "version = 3\nimports = [\"/etc/containerd/site/*.toml\"]\n", wantErr: "imports other files"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host := t.TempDir()
			if tc.containerdConfig != "" {
				p := filepath.Join(host, ContainerdConfigPath)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(tc.containerdConfig), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			bin := filepath.Join(t.TempDir(), "kubehtc-snapshotter")
			if err := os.WriteFile(bin, []byte("binary v1"), 0o755); err != nil {
				t.Fatal(err)
			}
			restart := []string{"systemctl", "try-restart", "containerd"}
			opts := Options{HostRoot: host, Binary: bin, ConfigDir: nodeFiles(t, tc.version, restart)}
			changed, err := Install(opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(all, changed); diff != "" {
				t.Errorf("first install changed (-want,+got):\n%s", diff)
			}
			st, err := os.Stat(filepath.Join(host, BinaryPath))
			if err != nil || st.Mode().Perm() != 0o755 {
				t.Errorf("installed binary: %v, mode %v", err, st.Mode())
			}
			// Re-running the pod on an unchanged node changes nothing (so restarts nothing).
			if changed, err = Install(opts); err != nil || len(changed) != 0 {
				t.Errorf("second install changed %v (err %v), want nothing", changed, err)
			}
			// A new binary changes only the binary.
			if err := os.WriteFile(bin, []byte("binary v2"), 0o755); err != nil {
				t.Fatal(err)
			}
			changed, err = Install(opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{BinaryPath}, changed); diff != "" {
				t.Errorf("after a new binary (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestInstallRejectsInvalidConfig(t *testing.T) {
	dir := nodeFiles(t, snapshotter.Containerd2, nil)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte("root = \"relative\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	if _, err := Install(Options{HostRoot: host, Binary: bin, ConfigDir: dir}); err == nil || !strings.Contains(err.Error(), "root") {
		t.Fatalf("err = %v, want an invalid-config error", err)
	}
	if entries, _ := os.ReadDir(host); len(entries) != 0 {
		t.Errorf("an invalid config wrote to the node: %v", entries)
	}
}
