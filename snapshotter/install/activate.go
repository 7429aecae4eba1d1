package install

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/snapshotter"
)

// Activate makes systemd on the node run what Install wrote: reload units, enable the snapshotter, and
// restart only what changed — the snapshotter when its binary, config or unit changed (it then restarts
// containerd itself once its socket is served, see containerd_restart_command), containerd when only its
// fragment changed. With nothing changed it only makes sure the snapshotter is started.
func Activate(ctx context.Context, hostRoot string, changed []string) error {
	logger := klog.FromContext(ctx)
	run := func(args ...string) error {
		out, err := systemctl(ctx, hostRoot, args...)
		if err != nil {
			return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out))
		}
		logger.V(1).Info("Ran systemctl on the node", "args", args)
		return nil
	}
	if err := run("daemon-reload"); err != nil {
		return err
	}
	if err := run("enable", "kubehtc-snapshotter.service"); err != nil {
		return err
	}
	touches := func(paths ...string) bool {
		return slices.ContainsFunc(changed, func(c string) bool { return slices.Contains(paths, c) })
	}
	switch {
	case touches(BinaryPath, snapshotter.SnapshotterConfigPath, UnitPath):
		logger.Info("Restarting kubehtc-snapshotter on the node", "changed", changed)
		return run("restart", "kubehtc-snapshotter.service")
	case touches(snapshotter.ContainerdFragmentPath, ContainerdDropInPath):
		logger.Info("Restarting containerd on the node to load the changed fragment", "changed", changed)
		if err := run("start", "kubehtc-snapshotter.service"); err != nil {
			return err
		}
		return run("try-restart", "containerd.service")
	default:
		return run("start", "kubehtc-snapshotter.service")
	}
}

// systemctl runs the node's systemctl chrooted into hostRoot: it reaches the node's systemd over the node's
// /run/systemd/private, so the pod image needs no systemctl of its own.
func systemctl(ctx context.Context, hostRoot string, args ...string) (string, error) {
	bin := "/usr/bin/systemctl"
	if _, err := exec.LookPath(filepath.Join(hostRoot, bin)); err != nil {
		bin = "/bin/systemctl"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: hostRoot}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Probe reports whether the snapshotter's socket under hostRoot accepts connections.
func Probe(hostRoot, socket string) error {
	c, err := net.DialTimeout("unix", filepath.Join(hostRoot, socket), 2*time.Second)
	if err != nil {
		return fmt.Errorf("kubehtc-snapshotter is not serving: %w", err)
	}
	return c.Close()
}

// Watch probes the socket every interval until ctx is done, logging when the state changes: the DaemonSet
// pod's main container, which keeps the installation visible (and its readiness probe meaningful).
func Watch(ctx context.Context, hostRoot, socket string, interval time.Duration) {
	logger := klog.FromContext(ctx)
	var last error
	first := true
	for {
		err := Probe(hostRoot, socket)
		if first || (err == nil) != (last == nil) {
			if err != nil {
				logger.Error(err, "Snapshotter down on the node", "socket", socket)
			} else {
				logger.Info("Snapshotter serving on the node", "socket", socket)
			}
		}
		first, last = false, err
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
