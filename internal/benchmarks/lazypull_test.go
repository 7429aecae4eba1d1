package benchmarks

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/kubehtc/kubehtc/snapshotter/testenv"
)

var (
	lazyImageMB = flag.Int("image-mb", 2048, "random payload of the lazypull test image, MiB (plus busybox and a small config file)")
	lazyLayers  = flag.Int("layers", 4, "payload layers of the lazypull test image")
	lazyRuns    = flag.Int("runs", 3, "lazypull runs per mode and workload (medians are reported)")
)

// lazyResult is one measured start: seconds from the pull's start to the container's exit, and registry bytes.
type lazyResult struct {
	seconds float64
	bytes   int64
}

// BenchmarkLazypull measures container start-up with a normal pull (download + unpack into overlayfs) against
// a lazy pull through kubehtc-snapshotter (eStargz, layers mounted over FUSE, labels as ctr-remote rpull sets
// them), on Debian's containerd, runc and a distribution registry on loopback, all started here. Two
// workloads: read one small file (the config); read one 256 MiB file (md5sum). Before every run the node is
// reset — images, content, snapshots and the snapshotter's cache deleted, both daemons restarted, the page
// cache dropped — so every run starts cold. Registry bytes are counted by a proxy in front of the registry.
// The snapshotter runs with background fetch off, so lazy bytes are what the container read (plus the
// prioritized files: busybox and the config).
func BenchmarkLazypull(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Fatal("lazypull needs root (containerd, runc, FUSE)")
	}
	ctx := context.Background()
	logf := func(format string, args ...any) { fmt.Printf("lazypull: "+format+"\n", args...) }
	env, err := testenv.Start(ctx, testenv.Options{Logf: logf})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := env.Close(); err != nil {
			b.Error(err)
		}
	}()
	bigFile := min(256<<20, int64(*lazyImageMB)<<20/int64(max(*lazyLayers, 1)))
	img, err := env.BuildImage(ctx, testenv.ImageSpec{
		Repository: "kubehtc/lazypull-bench", PayloadBytes: int64(*lazyImageMB) << 20, PayloadLayers: *lazyLayers,
		FileBytes: 64 << 20, BigFileBytes: bigFile,
		Seed: 42, CompressionLevel: 1,
	})
	if err != nil {
		b.Fatal(err)
	}
	logf("image: plain %.0f MB, eStargz %.0f MB", mb(img.PlainBytes), mb(img.EStargzBytes))

	type key struct{ mode, workload string }
	results := map[key][]lazyResult{}
	workloads := []struct {
		name string
		args []string
		want string
	}{
		{name: "small", args: []string{"cat", testenv.ConfigFile}, want: img.ConfigContent},
		{name: "big", args: []string{"md5sum", testenv.BigFile}, want: img.BigFileMD5 + "  " + testenv.BigFile + "\n"},
	}
	b.ResetTimer()
	for run := range *lazyRuns {
		// Alternate the order of the modes so that neither always runs right after the other.
		modes := []string{"full", "lazy"}
		if run%2 == 1 {
			slices.Reverse(modes)
		}
		for _, w := range workloads {
			for _, mode := range modes {
				if err := env.Restart(ctx); err != nil {
					b.Fatal(err)
				}
				dropCaches()
				env.ResetFetched()
				start := time.Now()
				var image containerd.Image
				sn := testenv.SnapshotterName
				if mode == "full" {
					image, err = env.PullFull(ctx, img.PlainRef)
					sn = "overlayfs"
				} else {
					image, err = env.PullLazy(ctx, img.EStargzRef)
				}
				if err != nil {
					b.Fatal(err)
				}
				out, err := env.Run(ctx, image, sn, w.args...)
				if err != nil {
					b.Fatal(err)
				}
				r := lazyResult{seconds: time.Since(start).Seconds(), bytes: env.FetchedBytes()}
				if out != w.want {
					b.Fatalf("%s %s: output %q, want %q", mode, w.name, out, w.want)
				}
				results[key{mode, w.name}] = append(results[key{mode, w.name}], r)
				logf("run %d %s %s: %.2fs, %.1f MB fetched", run+1, mode, w.name, r.seconds, mb(r.bytes))
			}
		}
	}
	b.StopTimer()
	med := func(mode, workload string) lazyResult {
		rs := results[key{mode, workload}]
		secs := make([]float64, len(rs))
		bytes := make([]int64, len(rs))
		for i, r := range rs {
			secs[i], bytes[i] = r.seconds, r.bytes
		}
		slices.Sort(secs)
		slices.Sort(bytes)
		return lazyResult{seconds: secs[len(secs)/2], bytes: bytes[len(bytes)/2]}
	}
	fullSmall, lazySmall := med("full", "small"), med("lazy", "small")
	fullBig, lazyBig := med("full", "big"), med("lazy", "big")
	fmt.Printf("lazypull: medians of %d runs; start + read one small file: full %.2fs %.0f MB, lazy %.2fs %.1f MB\n",
		*lazyRuns, fullSmall.seconds, mb(fullSmall.bytes), lazySmall.seconds, mb(lazySmall.bytes))
	fmt.Printf("lazypull: start + read one %d MiB file: full %.2fs %.0f MB, lazy %.2fs %.0f MB (ratio %.3f)\n",
		bigFile>>20, fullBig.seconds, mb(fullBig.bytes), lazyBig.seconds, mb(lazyBig.bytes), lazyBig.seconds/fullBig.seconds)
	fmt.Printf("BENCH lazypull image_mb=%.0f full_s=%.2f lazy_s=%.2f ratio=%.3f full_mb=%.1f lazy_mb=%.1f\n",
		mb(img.PlainBytes), fullSmall.seconds, lazySmall.seconds, lazySmall.seconds/fullSmall.seconds,
		mb(fullSmall.bytes), mb(lazySmall.bytes))
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// dropCaches writes back and drops the page cache, so that the registry's blobs are read from disk as on a
// cold registry. Best effort: without the permission the runs are warmer, not wrong.
func dropCaches() {
	_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
}
