// Package integration runs the real lazy-pulling chain on this machine: a registry on a loopback port behind a
// counting proxy, Debian's containerd with kubehtc-snapshotter as its proxy plugin, runc. It needs root, FUSE
// and the packages of hack/ensure-lazypull-deps.sh; without FUSE it fails rather than skips.
package integration

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/kubehtc/kubehtc/snapshotter/testenv"
)

func TestLazyPullReadsFileFromRunningContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts containerd, a registry and kubehtc-snapshotter")
	}
	if os.Geteuid() != 0 {
		t.Fatal("lazy-pull integration test needs root (containerd, runc and FUSE mounts)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, testenv.Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("starting registry, containerd and kubehtc-snapshotter: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []string{"snapshotter", "containerd"} {
				t.Logf("%s log (tail):\n%s", c, env.LogTail(c, 30))
			}
		}
		if err := env.Close(); err != nil {
			t.Errorf("cleaning up (processes, mounts, %s): %v", env.Dir, err)
		}
	})

	img, err := env.BuildImage(ctx, testenv.ImageSpec{
		Repository: "kubehtc/lazy-test", PayloadBytes: 40 << 20, PayloadLayers: 2, FileBytes: 4 << 20,
		BigFileBytes: 8 << 20, Seed: 1, CompressionLevel: 1,
	})
	if err != nil {
		t.Fatalf("building the test image: %v", err)
	}
	t.Logf("image: plain %d bytes, eStargz %d bytes", img.PlainBytes, img.EStargzBytes)

	env.ResetFetched()
	lazy, err := env.PullLazy(ctx, img.EStargzRef)
	if err != nil {
		t.Fatal(err)
	}
	if n := fuseMounts(t, env.Dir); n == 0 {
		t.Fatal("after the lazy pull no FUSE mount exists under the snapshotter's root: layers were not mounted remotely")
	}
	out, err := env.Run(ctx, lazy, testenv.SnapshotterName, "cat", testenv.ConfigFile)
	if err != nil {
		t.Fatalf("running cat in a lazily pulled container: %v", err)
	}
	if out != img.ConfigContent {
		t.Errorf("cat %s in the container = %q, want %q", testenv.ConfigFile, out, img.ConfigContent)
	}
	lazyBytes := env.FetchedBytes()
	t.Logf("lazy pull + start + read %s: %d bytes fetched of %d", testenv.ConfigFile, lazyBytes, img.EStargzBytes)
	if lazyBytes >= img.EStargzBytes {
		t.Errorf("lazy pull fetched %d bytes, not fewer than the image's %d: layers were downloaded, not mounted", lazyBytes, img.EStargzBytes)
	}

	// Contents read through FUSE on demand are the bytes that were written.
	out, err = env.Run(ctx, lazy, testenv.SnapshotterName, "md5sum", testenv.BigFile)
	if err != nil {
		t.Fatalf("running md5sum in a lazily pulled container: %v", err)
	}
	if got, _, _ := strings.Cut(out, " "); got != img.BigFileMD5 {
		t.Errorf("md5sum %s in the container = %q, want %q", testenv.BigFile, got, img.BigFileMD5)
	}

	// The counter itself: a normal pull of the plain image fetches at least the image.
	env.ResetFetched()
	full, err := env.PullFull(ctx, img.PlainRef)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Run(ctx, full, "overlayfs", "cat", testenv.ConfigFile); err != nil {
		t.Fatalf("running cat in a normally pulled container: %v", err)
	}
	if n := env.FetchedBytes(); n < img.PlainBytes {
		t.Errorf("normal pull fetched %d bytes through the proxy, fewer than the image's %d: the counter is broken", n, img.PlainBytes)
	}
}

func fuseMounts(t *testing.T, dir string) int {
	t.Helper()
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatalf("reading mounts: %v", err)
	}
	n := 0
	for _, m := range ms {
		if strings.HasPrefix(m.FSType, "fuse") {
			n++
		}
	}
	return n
}
