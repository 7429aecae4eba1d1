package integration

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubehtc/kubehtc/snapshotter/testenv"
)

// TestCRIPullsLazily checks the node configuration a kubelet relies on: containerd 1.6 with the rendered
// fragment's CRI settings reports kubehtc-snapshotter as its snapshotter with snapshot annotations on, and an
// image pulled through the CRI image service (what the kubelet calls) is mounted remotely, fetching fewer bytes
// than the image.
func TestCRIPullsLazily(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts containerd with CRI, a registry and kubehtc-snapshotter")
	}
	if os.Geteuid() != 0 {
		t.Fatal("lazy-pull integration test needs root (containerd and FUSE mounts)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, testenv.Options{Logf: t.Logf, CRI: true})
	if err != nil {
		t.Fatalf("starting registry, containerd (CRI) and kubehtc-snapshotter: %v", err)
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
		Repository: "kubehtc/cri-test", PayloadBytes: 24 << 20, PayloadLayers: 2, FileBytes: 4 << 20, Seed: 2,
		CompressionLevel: 1,
	})
	if err != nil {
		t.Fatalf("building the test image: %v", err)
	}

	conn, err := grpc.NewClient("unix://"+env.ContainerdSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := runtimeapi.NewRuntimeServiceClient(conn).Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatalf("CRI status: %v", err)
	}
	var cfg struct {
		Containerd struct {
			Snapshotter                string `json:"snapshotter"`
			DisableSnapshotAnnotations bool   `json:"disableSnapshotAnnotations"`
		} `json:"containerd"`
	}
	if err := json.Unmarshal([]byte(st.Info["config"]), &cfg); err != nil {
		t.Fatalf("CRI status config %q: %v", st.Info["config"], err)
	}
	if cfg.Containerd.Snapshotter != testenv.SnapshotterName || cfg.Containerd.DisableSnapshotAnnotations {
		t.Errorf("CRI config: snapshotter %q, disableSnapshotAnnotations %v; want %q, false",
			cfg.Containerd.Snapshotter, cfg.Containerd.DisableSnapshotAnnotations, testenv.SnapshotterName)
	}

	env.ResetFetched()
	if _, err := runtimeapi.NewImageServiceClient(conn).PullImage(ctx, &runtimeapi.PullImageRequest{
		Image: &runtimeapi.ImageSpec{Image: img.EStargzRef}}); err != nil {
		t.Fatalf("CRI PullImage %s: %v", img.EStargzRef, err)
	}
	if n := fuseMounts(t, env.Dir); n == 0 {
		t.Error("after the CRI pull no FUSE mount exists under the snapshotter's root: layers were downloaded")
	}
	fetched := env.FetchedBytes()
	t.Logf("CRI pull: %d bytes fetched of %d", fetched, img.EStargzBytes)
	if fetched >= img.EStargzBytes {
		t.Errorf("CRI pull fetched %d bytes, not fewer than the image's %d", fetched, img.EStargzBytes)
	}
}
