// Package install puts kubehtc-snapshotter on a node from inside a privileged pod (the DaemonSet of
// deploy/snapshotter): the binary, its configuration, the containerd fragment and systemd units, written under
// the node's root mounted in the pod. The snapshotter then runs under the node's systemd, not in the pod:
// containerd needs it to create any container, including a restarted snapshotter pod's.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubehtc/kubehtc/snapshotter"
)

// Paths on the node.
const (
	// BinaryPath is where the snapshotter binary is installed.
	BinaryPath = "/usr/local/bin/kubehtc-snapshotter"
	// UnitPath is the snapshotter's systemd unit.
	UnitPath = "/etc/systemd/system/kubehtc-snapshotter.service"
	// ContainerdDropInPath orders containerd after the snapshotter at boot.
	ContainerdDropInPath = "/etc/systemd/system/containerd.service.d/10-kubehtc-snapshotter.conf"
	// ContainerdConfigPath is containerd's main configuration.
	ContainerdConfigPath = "/etc/containerd/config.toml"
)

// Unit is the snapshotter's systemd unit. Restart=always keeps it up; each start runs the configured
// containerd_restart_command once the socket is served, so containerd reconnects at once instead of backing
// off (reported up to two minutes). SIGTERM makes it unmount its FUSE mounts before exiting.
const Unit = `[Unit]
Description=kubehtc-snapshotter: lazy image pulling for containerd (eStargz over FUSE)
Documentation=https://github.com/kubehtc/kubehtc/blob/main/docs/snapshotter.md
After=network-online.target local-fs.target
Wants=network-online.target
Before=containerd.service

[Service]
Type=simple
ExecStart=` + BinaryPath + ` -config ` + snapshotter.SnapshotterConfigPath + `
Restart=always
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=60
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
`

// ContainerdDropIn makes containerd want the snapshotter and start after it at boot.
const ContainerdDropIn = `# Installed by kubehtc-snapshotter's DaemonSet: containerd's proxy plugin needs the snapshotter's socket.
[Unit]
Wants=kubehtc-snapshotter.service
After=kubehtc-snapshotter.service
`

// Options of an installation.
type Options struct {
	// HostRoot is where the node's root filesystem is mounted ("/host").
	HostRoot string
	// Binary is the kubehtc-snapshotter executable to install (usually os.Executable()).
	Binary string
	// ConfigDir holds the rendered node files: config.toml (the snapshotter's) and containerd.toml (the
	// fragment), as `kubehtc snapshotter config --only ...` prints them (the DaemonSet's ConfigMap).
	ConfigDir string
}

// Install writes every file that differs from what the node has and returns the node paths it changed; an
// unchanged node gives none, so re-running the DaemonSet pod restarts nothing. It refuses a containerd
// config.toml that would not read the fragment.
func Install(opts Options) ([]string, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(opts.ConfigDir, name))
		if err != nil {
			return nil, fmt.Errorf("reading rendered node file: %w", err)
		}
		return b, nil
	}
	cfg, err := read("config.toml")
	if err != nil {
		return nil, err
	}
	if _, err := snapshotter.ParseConfig(cfg); err != nil {
		return nil, err
	}
	frag, err := read("containerd.toml")
	if err != nil {
		return nil, err
	}
	if err := checkContainerdImports(opts.HostRoot, frag); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("reading the snapshotter binary: %w", err)
	}
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{BinaryPath, bin, 0o755},
		{snapshotter.SnapshotterConfigPath, cfg, 0o644},
		{snapshotter.ContainerdFragmentPath, frag, 0o644},
		{UnitPath, []byte(Unit), 0o644},
		{ContainerdDropInPath, []byte(ContainerdDropIn), 0o644},
	}
	var changed []string
	for _, f := range files {
		ok, err := writeIfChanged(filepath.Join(opts.HostRoot, f.path), f.data, f.mode)
		if err != nil {
			return changed, err
		}
		if ok {
			changed = append(changed, f.path)
		}
	}
	return changed, nil
}

// checkContainerdImports fails when containerd would not read the fragment: containerd 1.x reads only
// config.toml unless it imports conf.d; 2.x imports conf.d by default, unless config.toml sets imports itself.
func checkContainerdImports(hostRoot string, frag []byte) error {
	main, err := os.ReadFile(filepath.Join(hostRoot, ContainerdConfigPath))
	v1 := bytes.Contains(frag, []byte("\nversion = 2\n"))
	switch {
	case errors.Is(err, os.ErrNotExist) && !v1:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("containerd 1.x without %s does not read %s: create it with imports = [%q]",
			ContainerdConfigPath, snapshotter.ContainerdFragmentPath, filepath.Dir(snapshotter.ContainerdFragmentPath)+"/*.toml")
	case err != nil:
		return fmt.Errorf("reading containerd config: %w", err)
	}
	for _, line := range strings.Split(string(main), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "imports") {
			if strings.Contains(line, "conf.d") || strings.Contains(line, snapshotter.ContainerdFragmentPath) {
				return nil
			}
			return fmt.Errorf("%s imports other files but not %s: add %q to its imports", ContainerdConfigPath,
				snapshotter.ContainerdFragmentPath, filepath.Dir(snapshotter.ContainerdFragmentPath)+"/*.toml")
		}
	}
	if v1 {
		return fmt.Errorf("%s has no imports, so containerd 1.x will not read %s: add imports = [%q] at its top",
			ContainerdConfigPath, snapshotter.ContainerdFragmentPath, filepath.Dir(snapshotter.ContainerdFragmentPath)+"/*.toml")
	}
	return nil
}

// writeIfChanged atomically replaces path with data unless it already has exactly that content and mode.
func writeIfChanged(path string, data []byte, mode os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm() == mode {
			return false, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		tmp.Close()
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	// Rename replaces a running binary safely (the old inode lives on until the process exits).
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("replacing %s: %w", path, err)
	}
	return true, nil
}
