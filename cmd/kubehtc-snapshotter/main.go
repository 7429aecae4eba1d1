// Command kubehtc-snapshotter is kubehtc's lazy-pulling snapshotter: a containerd proxy (remote) snapshotter
// that mounts eStargz layers over FUSE and fetches their files from the registry on first read. See
// snapshotter/daemon and docs/snapshotter.md.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/snapshotter"
	"github.com/kubehtc/kubehtc/snapshotter/daemon"
)

func main() {
	klog.InitFlags(nil)
	configFile := flag.String("config", "/etc/kubehtc-snapshotter/config.toml", "configuration file (TOML, see docs/snapshotter.md)")
	address := flag.String("address", "", "unix socket to serve on; overrides the config file's address")
	root := flag.String("root", "", "root directory; overrides the config file's root")
	flag.Parse()
	cfg, err := snapshotter.LoadConfig(*configFile)
	if err != nil {
		klog.ErrorS(err, "kubehtc-snapshotter")
		os.Exit(1)
	}
	if *address != "" {
		cfg.Address = *address
	}
	if *root != "" {
		cfg.Root = *root
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(klog.NewContext(ctx, klog.Background()), cfg); err != nil {
		klog.ErrorS(err, "kubehtc-snapshotter")
		os.Exit(1)
	}
}
