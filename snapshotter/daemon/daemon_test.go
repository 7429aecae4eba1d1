package daemon

import (
	"testing"

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
			name: "background fetch off, prefetch off, metrics on",
			in: snapshotter.Config{BackgroundFetch: &off, Prefetch: snapshotter.PrefetchConfig{Disabled: true},
				MetricsAddress: "127.0.0.1:9781"},
			want: func(c *service.Config) {
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
