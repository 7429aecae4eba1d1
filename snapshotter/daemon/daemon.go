// Package daemon runs kubehtc-snapshotter: the stargz-snapshotter library's remote snapshotter served over
// containerd's snapshots gRPC API on a unix socket, for containerd to use as a proxy plugin.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/contrib/snapshotservice"
	"github.com/containerd/stargz-snapshotter/service"
	"github.com/containerd/stargz-snapshotter/service/keychain/dockerconfig"
	"github.com/containerd/stargz-snapshotter/service/resolver"
	"github.com/moby/sys/mountinfo"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/snapshotter"
)

// shutdownGrace bounds how long in-flight gRPC calls may run after the stop signal.
const shutdownGrace = 10 * time.Second

// Run serves the snapshotter described by cfg (defaulted and validated) until ctx is done, then stops serving,
// unmounts every FUSE and overlay mount it made under cfg.Root and removes the socket.
func Run(ctx context.Context, cfg *snapshotter.Config) (rerr error) {
	logger := klog.FromContext(ctx)
	if err := CheckFUSE(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return fmt.Errorf("creating root: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Address), 0o755); err != nil {
		return fmt.Errorf("creating socket directory: %w", err)
	}
	// A socket left by a killed predecessor would make Listen fail.
	if err := os.Remove(cfg.Address); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	sc := StargzConfig(cfg)
	rs, err := service.NewStargzSnapshotterService(ctx, cfg.Root, &sc,
		service.WithCredsFuncs(dockerconfig.NewDockerconfigKeychain(ctx)))
	if err != nil {
		return fmt.Errorf("creating stargz snapshotter: %w", err)
	}
	defer func() {
		if err := rs.Close(); err != nil {
			rerr = errors.Join(rerr, fmt.Errorf("closing snapshotter: %w", err))
		}
		if err := UnmountAll(cfg.Root); err != nil {
			rerr = errors.Join(rerr, err)
		}
		logger.Info("Snapshotter stopped; mounts under root removed", "root", cfg.Root)
	}()

	srv := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(srv, snapshotservice.FromSnapshotter(rs))
	l, err := net.Listen("unix", cfg.Address)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Address, err)
	}
	defer os.Remove(cfg.Address)
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(l) }()
	logger.Info("Serving snapshots API", "address", cfg.Address, "root", cfg.Root,
		"backgroundFetch", *cfg.BackgroundFetch, "prefetch", !cfg.Prefetch.Disabled)

	var metrics *http.Server
	if cfg.MetricsAddress != "" {
		ml, err := net.Listen("tcp", cfg.MetricsAddress)
		if err != nil {
			srv.Stop()
			return fmt.Errorf("listening for metrics on %s: %w", cfg.MetricsAddress, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.Handler())
		metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := metrics.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("serving metrics: %w", err)
			}
		}()
		logger.Info("Serving metrics", "address", ml.Addr().String())
	}
	if len(cfg.ContainerdRestartCommand) > 0 {
		go restartContainerd(ctx, cfg.ContainerdRestartCommand)
	}

	select {
	case <-ctx.Done():
		err = nil
	case err = <-serveErr:
		err = fmt.Errorf("serving snapshots API: %w", err)
	}
	logger.Info("Stopping snapshotter")
	if metrics != nil {
		_ = metrics.Close()
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		srv.Stop()
	}
	return err
}

// restartContainerd runs the configured command once, so that containerd connects to the new socket at once
// instead of after its reconnection back-off.
func restartContainerd(ctx context.Context, argv []string) {
	logger := klog.FromContext(ctx)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		logger.Error(err, "Restarting containerd failed; it reconnects after its back-off",
			"command", strings.Join(argv, " "), "output", string(out))
		return
	}
	logger.Info("Restarted containerd", "command", strings.Join(argv, " "))
}

// StargzConfig maps our configuration onto the stargz-snapshotter library's.
func StargzConfig(cfg *snapshotter.Config) service.Config {
	var sc service.Config
	sc.NoBackgroundFetch = cfg.BackgroundFetch != nil && !*cfg.BackgroundFetch
	sc.NoPrefetch = cfg.Prefetch.Disabled
	sc.PrefetchTimeoutSec = cfg.Prefetch.TimeoutSeconds
	sc.MaxLRUCacheEntry = cfg.Cache.MemoryEntries
	sc.MaxCacheFds = cfg.Cache.OpenFiles
	sc.ChunkSize = cfg.Cache.ChunkSizeBytes
	sc.NoPrometheus = cfg.MetricsAddress == ""
	sc.LogFileAccess = cfg.LogFileAccess
	sc.ResolverConfig.RequestTimeoutSec = cfg.RequestTimeoutSeconds
	if len(cfg.Registries) > 0 {
		sc.ResolverConfig.Host = map[string]resolver.HostConfig{}
	}
	for _, r := range cfg.Registries {
		var h resolver.HostConfig
		for _, m := range r.Mirrors {
			h.Mirrors = append(h.Mirrors, resolver.MirrorConfig{Host: m.Host, Insecure: m.Insecure,
				RequestTimeoutSec: m.RequestTimeoutSeconds})
		}
		// The library tries the host itself last, over HTTPS unless it is loopback: an insecure host is listed
		// as its own plain-HTTP mirror.
		if r.Insecure {
			h.Mirrors = append(h.Mirrors, resolver.MirrorConfig{Host: r.Host, Insecure: true})
		}
		sc.ResolverConfig.Host[r.Host] = h
	}
	return sc
}

// CheckFUSE fails with an operator-readable error when /dev/fuse cannot be opened: lazy pulling mounts every
// layer over FUSE.
func CheckFUSE() error {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("FUSE is unavailable (lazy pulling mounts layers over FUSE): opening /dev/fuse: %w; "+
			"load the fuse kernel module, and in a container run privileged with /dev/fuse mounted", err)
	}
	return f.Close()
}

// UnmountAll detaches every mount at or below root, deepest first. Lazy (MNT_DETACH) so that a busy mount does
// not keep the snapshotter from exiting.
func UnmountAll(root string) error {
	mounts, err := Mounts(root)
	if err != nil {
		return err
	}
	var errs []error
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) &&
			!errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", mounts[i], err))
		}
	}
	return errors.Join(errs...)
}

// Mounts lists the mount points at or below dir, parents before children.
func Mounts(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("reading mount table: %w", err)
	}
	var out []string
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	// Sorting by length puts parents before their children.
	sortByLen(out)
	return out, nil
}

func sortByLen(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && len(s[j]) < len(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
