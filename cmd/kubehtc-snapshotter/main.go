// Command kubehtc-snapshotter is kubehtc's lazy-pulling snapshotter: a containerd proxy (remote) snapshotter
// that mounts eStargz layers over FUSE and fetches their files from the registry on first read. See
// snapshotter/daemon and docs/snapshotter.md. The install, watch and probe modes serve the DaemonSet of
// deploy/snapshotter, which puts the snapshotter under the node's systemd (snapshotter/install).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/snapshotter"
	"github.com/kubehtc/kubehtc/snapshotter/daemon"
	"github.com/kubehtc/kubehtc/snapshotter/install"
)

func main() {
	klog.InitFlags(nil)
	configFile := flag.String("config", snapshotter.SnapshotterConfigPath, "configuration file (TOML, see docs/snapshotter.md); in install mode its directory also holds containerd.toml")
	address := flag.String("address", "", "unix socket to serve on; overrides the config file's address")
	root := flag.String("root", "", "root directory; overrides the config file's root")
	mode := flag.String("mode", "serve", "serve: run the snapshotter; install: install it on the node under -host-root and start it with the node's systemd; watch: log whether it serves on the node; probe: exit 0 if it serves on the node")
	hostRoot := flag.String("host-root", "/host", "where the node's root filesystem is mounted (install, watch, probe)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())
	if err := run(ctx, *mode, *configFile, *address, *root, *hostRoot); err != nil {
		klog.ErrorS(err, "kubehtc-snapshotter", "mode", *mode)
		os.Exit(1)
	}
}

func run(ctx context.Context, mode, configFile, address, root, hostRoot string) error {
	cfg, err := snapshotter.LoadConfig(configFile)
	if err != nil {
		return err
	}
	if address != "" {
		cfg.Address = address
	}
	if root != "" {
		cfg.Root = root
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	switch mode {
	case "serve":
		return daemon.Run(ctx, cfg)
	case "install":
		self, err := os.Executable()
		if err != nil {
			return err
		}
		changed, err := install.Install(install.Options{HostRoot: hostRoot, Binary: self, ConfigDir: filepath.Dir(configFile)})
		if err != nil {
			return err
		}
		return install.Activate(ctx, hostRoot, changed)
	case "watch":
		install.Watch(ctx, hostRoot, cfg.Address, 30*time.Second)
		return nil
	case "probe":
		return install.Probe(hostRoot, cfg.Address)
	}
	return fmt.Errorf("unknown -mode %q: want serve, install, watch or probe", mode)
}
