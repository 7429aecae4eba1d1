package daemon

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/containerd/stargz-snapshotter/service"
	"github.com/containerd/stargz-snapshotter/service/resolver"
	"github.com/google/go-cmp/cmp"

	"github.com/kubehtc/kubehtc/snapshotter"
)

func TestStargzConfig(t *testing.T) {
	off := false
	cases := []struct {
		name string
		in   snapshotter.Config
		want func(*service.Config)
	}{
		{
			name: "defaults: background fetch and prefetch on, no metrics",
			in:   snapshotter.Config{},
			want: func(c *service.Config) {},
		},
		{
			name: "background fetch off, prefetch off, metrics and file-access log on",
			in: snapshotter.Config{BackgroundFetch: &off, Prefetch: snapshotter.PrefetchConfig{Disabled: true},
				MetricsAddress: "127.0.0.1:9781", LogFileAccess: true},
			want: func(c *service.Config) {
				c.LogFileAccess = true
				c.NoBackgroundFetch = true
				c.NoPrefetch = true
				c.NoPrometheus = false
			},
		},
		{
			// The library tries mirrors in order, then the host over HTTPS (plain HTTP if loopback): an insecure
			// host becomes its own plain-HTTP mirror, after the configured ones.
			name: "mirrors and an insecure host",
			in: snapshotter.Config{Registries: []snapshotter.RegistryConfig{
				{Host: "docker.io", Mirrors: []snapshotter.MirrorConfig{{Host: "m:5000", Insecure: true, RequestTimeoutSeconds: -1}}},
				{Host: "10.0.0.5:5000", Insecure: true, Mirrors: []snapshotter.MirrorConfig{{Host: "m2"}}},
			}},
			want: func(c *service.Config) {
				c.ResolverConfig.Host = map[string]resolver.HostConfig{
					"docker.io":     {Mirrors: []resolver.MirrorConfig{{Host: "m:5000", Insecure: true, RequestTimeoutSec: -1}}},
					"10.0.0.5:5000": {Mirrors: []resolver.MirrorConfig{{Host: "m2"}, {Host: "10.0.0.5:5000", Insecure: true}}},
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.SetDefaults()
			var want service.Config
			want.PrefetchTimeoutSec = snapshotter.DefaultPrefetchTimeoutSeconds
			want.MaxLRUCacheEntry = snapshotter.DefaultCacheMemoryEntries
			want.MaxCacheFds = snapshotter.DefaultCacheOpenFiles
			want.ChunkSize = snapshotter.DefaultChunkSizeBytes
			want.ResolverConfig.RequestTimeoutSec = snapshotter.DefaultRequestTimeoutSeconds
			want.NoPrometheus = true
			tc.want(&want)
			if diff := cmp.Diff(want, StargzConfig(&tc.in)); diff != "" {
				t.Errorf("(-want,+got):\n%s", diff)
			}
		})
	}
}

// TestRunServesThenCleansUp runs the daemon for real (root, FUSE): it serves the snapshots API on the socket,
// runs the containerd restart command once serving, and on cancellation returns cleanly, removes the socket
// and leaves nothing mounted under its root. (Unmounting real FUSE layers on SIGTERM is checked by
// snapshotter/integration, whose clean-up fails if the snapshotter left mounts.)
func TestRunServesThenCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the snapshotter (root, FUSE)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root (the snapshotter mounts overlay and FUSE filesystems)")
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "containerd-restarted")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	l.Close()
	cfg := &snapshotter.Config{
		Address:                  filepath.Join(dir, "s.sock"),
		Root:                     filepath.Join(dir, "root"),
		MetricsAddress:           metricsAddr,
		ContainerdRestartCommand: []string{"touch", marker},
	}
	cfg.SetDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	defer cancel()

	var client snapshotsapi.SnapshotsClient
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := grpc.NewClient("unix://"+cfg.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err == nil {
			client = snapshotsapi.NewSnapshotsClient(conn)
			defer conn.Close()
			if _, err = client.List(ctx, &snapshotsapi.ListSnapshotsRequest{Snapshotter: "stargz"}); err == nil {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshots API not served on %s: %v", cfg.Address, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The snapshotter's metadata store answers through the API.
	if _, err := client.Prepare(ctx, &snapshotsapi.PrepareSnapshotRequest{Snapshotter: "stargz", Key: "test"}); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	for time.Now().Before(deadline) {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("containerd_restart_command did not run: %v", err)
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Errorf("metrics endpoint: %v", err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
			t.Errorf("GET /metrics: %s, %d bytes without go_goroutines", resp.Status, len(body))
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancellation: %v", err)
	}
	if _, err := os.Stat(cfg.Address); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket %s still exists after shutdown (err %v)", cfg.Address, err)
	}
	if left, err := Mounts(cfg.Root); err != nil || len(left) != 0 {
		t.Errorf("mounts left under root after shutdown: %v (err %v)", left, err)
	}
}
