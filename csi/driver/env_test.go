package driver

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kubehtc/kubehtc/csi/mounter"
)

// env is a fake node: a kubelet directory and host roots standing for the node's /cvmfs and /eos, with
// plain directories standing for the client's repositories.
type env struct {
	dir string
	cfg Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for bind mounts (CI runs as root)")
	}
	dir := t.TempDir()
	// Last cleanup to register runs first: unmount whatever a failed test left below dir, so that
	// TempDir's removal does not descend into host directories.
	t.Cleanup(func() { unmountAll(t, dir) })
	e := &env{dir: dir, cfg: Config{
		DriverName: "csi.kubehtc.test",
		KubeletDir: filepath.Join(dir, "kubelet"),
		CVMFS: CVMFSConfig{HostRoot: filepath.Join(dir, "cvmfs"), Repositories: []string{"atlas.cern.ch", "*.example.org", "empty.cern.ch"},
			ClientConfigs: map[string]ClientConfig{"alt": {HostRoot: filepath.Join(dir, "cvmfs-alt")}}},
		EOS: EOSConfig{HostRoot: filepath.Join(dir, "eos"), Paths: []string{"/eos/atlas"}},
	}}
	for _, f := range []string{
		"cvmfs/atlas.cern.ch/repo/sw/setup.sh",
		"cvmfs/sft.example.org/lcg/README",
		"cvmfs/sft.cern.ch/not-allowed",
		"cvmfs-alt/atlas.cern.ch/alt",
		"eos/atlas/user/data.root",
		"eos/cms/secret",
	} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"cvmfs/empty.cern.ch", "kubelet/pods/pod-a/volumes", "kubelet/pods/pod-b/volumes"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.cfg.Default()
	return e
}

// target returns a fresh target path of a pod.
func (e *env) target(pod, vol string) string {
	return filepath.Join(e.cfg.KubeletDir, "pods", pod, "volumes", vol)
}

// start runs a driver on a unix socket and returns a client connection; stop stops the driver.
func (e *env) start(t *testing.T) (conn *grpc.ClientConn, stop func()) {
	t.Helper()
	d, err := New(e.cfg, Options{NodeID: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(e.dir, "csi.sock")
	l, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(l) }()
	conn, err = grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		conn.Close()
		d.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return conn, stop
}

func unmountAll(t *testing.T, dir string) {
	table, err := mounter.ReadTable(mounter.ProcMountInfo)
	if err != nil {
		t.Error(err)
		return
	}
	under := table.Under(dir)
	sort.Slice(under, func(i, j int) bool { return len(under[i].MountPoint) > len(under[j].MountPoint) })
	for _, m := range under {
		t.Errorf("left mounted: %s", m.MountPoint)
		_ = unix.Unmount(m.MountPoint, unix.MNT_DETACH)
	}
}

// mountAt returns the topmost mount at p.
func mountAt(t *testing.T, p string) (mounter.Entry, bool) {
	t.Helper()
	table, err := mounter.ReadTable(mounter.ProcMountInfo)
	if err != nil {
		t.Fatal(err)
	}
	return table.At(p)
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func publish(ctx context.Context, n csi.NodeClient, target string, attrs map[string]string) error {
	_, err := n.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: "csi-" + strings.ReplaceAll(filepath.Base(target), "/", "-"), TargetPath: target,
		VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY), Readonly: true, VolumeContext: attrs,
	})
	return err
}

func readTable() (mounter.Table, error) { return mounter.ReadTable(mounter.ProcMountInfo) }
