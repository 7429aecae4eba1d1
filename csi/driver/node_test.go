package driver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestRestart: a volume published by one driver instance stays mounted while the driver is down, and a
// new instance (no memory of the first) publishes it again idempotently and unpublishes it.
func TestRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	target := e.target("pod-a", "atlas")
	atlas := map[string]string{"type": "cvmfs", "repository": "atlas.cern.ch"}

	conn, stop := e.start(t)
	if err := publish(ctx, csi.NewNodeClient(conn), target, atlas); err != nil {
		t.Fatal(err)
	}
	stop()

	// The driver is down: the pod still sees its software.
	if _, mounted := mountAt(t, target); !mounted {
		t.Fatalf("%s not mounted after the driver stopped", target)
	}
	if got, err := os.ReadFile(filepath.Join(target, "repo/sw/setup.sh")); err != nil || string(got) != "cvmfs/atlas.cern.ch/repo/sw/setup.sh" {
		t.Fatalf("reading through the mount while the driver is down: %q, %v", got, err)
	}

	conn, stop = e.start(t)
	defer stop()
	n := csi.NewNodeClient(conn)
	if err := publish(ctx, n, target, atlas); err != nil {
		t.Fatalf("second publish after restart: %v", err)
	}
	if got := len(mountsAt(t, target)); got != 1 {
		t.Errorf("after the second publish, %d mounts at the target, want 1 (idempotent)", got)
	}
	// Another volume at the same target is refused, also after the restart.
	err := publish(ctx, n, target, map[string]string{"repository": "sft.example.org"})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("publishing another repository at a used target: %v, want AlreadyExists", err)
	}
	unpublish(t, n, target)
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target still exists after unpublish: %v", err)
	}
	unpublish(t, n, target) // idempotent
}

func TestPublish(t *testing.T) {
	e := newEnv(t)
	conn, _ := e.start(t)
	n := csi.NewNodeClient(conn)
	ctx := context.Background()

	t.Run("cvmfs is read-only even when asked for writing", func(t *testing.T) {
		target := e.target("pod-a", "sft")
		_, err := n.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v1", TargetPath: target,
			VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
			VolumeContext:    map[string]string{"repository": "sft.example.org", "csi.storage.k8s.io/ephemeral": "true"}})
		if err != nil {
			t.Fatal(err)
		}
		defer unpublish(t, n, target)
		if m, _ := mountAt(t, target); !m.ReadOnly() {
			t.Errorf("mount options %v: not read-only", m.Options)
		}
		if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("writing into CVMFS: %v, want a read-only file system error", err)
		}
		if _, err := os.Stat(filepath.Join(target, "lcg/README")); err != nil {
			t.Error(err)
		}
	})
	t.Run("eos path, writable when asked, telemetry", func(t *testing.T) {
		target := e.target("pod-b", "eos")
		_, err := n.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v2", TargetPath: target,
			VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
			VolumeContext:    map[string]string{"path": "/eos/atlas/user"}})
		if err != nil {
			t.Fatal(err)
		}
		defer unpublish(t, n, target)
		if err := os.WriteFile(filepath.Join(target, "out.root"), []byte("x"), 0o644); err != nil {
			t.Errorf("writing into a writable EOS volume: %v", err)
		}
		if _, err := os.Stat(filepath.Join(e.dir, "eos/atlas/user/out.root")); err != nil {
			t.Errorf("written file not on the host: %v", err)
		}
		atlas := e.target("pod-b", "atlas")
		if err := publish(ctx, n, atlas, map[string]string{"repository": "atlas.cern.ch"}); err != nil {
			t.Fatal(err)
		}
		defer unpublish(t, n, atlas)
		d, err := New(e.cfg, Options{NodeID: "n"})
		if err != nil {
			t.Fatal(err)
		}
		cvmfs, eos, err := d.Mounted()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"atlas.cern.ch"}, cvmfs); diff != "" {
			t.Errorf("mounted repositories (-want,+got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"/eos/atlas/user"}, eos); diff != "" {
			t.Errorf("mounted EOS paths (-want,+got):\n%s", diff)
		}
	})
	t.Run("client configuration selects another host root", func(t *testing.T) {
		target := e.target("pod-a", "alt")
		if err := publish(ctx, n, target, map[string]string{"repository": "atlas.cern.ch", "clientConfig": "alt"}); err != nil {
			t.Fatal(err)
		}
		defer unpublish(t, n, target)
		if _, err := os.Stat(filepath.Join(target, "alt")); err != nil {
			t.Errorf("not the alternative client's tree: %v", err)
		}
		// The same repository from the default client is another volume.
		err := publish(ctx, n, target, map[string]string{"repository": "atlas.cern.ch"})
		if status.Code(err) != codes.AlreadyExists {
			t.Errorf("default client at the alt target: %v, want AlreadyExists", err)
		}
	})
	t.Run("volume created by the controller, published by ID only", func(t *testing.T) {
		vol, err := csi.NewControllerClient(conn).CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-1",
			VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)},
			Parameters:         map[string]string{"repository": "atlas.cern.ch"}})
		if err != nil {
			t.Fatal(err)
		}
		target := e.target("pod-a", "pv")
		if _, err := n.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol.Volume.VolumeId, TargetPath: target,
			VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)}); err != nil {
			t.Fatal(err)
		}
		unpublish(t, n, target)
	})

	bad := []struct {
		name     string
		target   string
		attrs    map[string]string
		volumeID string
		want     codes.Code
		wantMsg  string
	}{
		{name: "repository not in the allowlist", attrs: map[string]string{"repository": "sft.cern.ch"},
			want: codes.InvalidArgument, wantMsg: `CVMFS repository "sft.cern.ch" (allowed: *.example.org, atlas.cern.ch, empty.cern.ch)`},
		{name: "unknown volume ID without attributes", volumeID: "cvmfs:sft.cern.ch:0123456789abcdef", want: codes.NotFound, wantMsg: "not allowed"},
		{name: "foreign volume ID without attributes", volumeID: "vol-1", want: codes.NotFound},
		{name: "repository traversal", attrs: map[string]string{"repository": "../../etc"}, want: codes.InvalidArgument, wantMsg: "empty label"},
		{name: "eos traversal", attrs: map[string]string{"path": "/eos/atlas/../cms"}, want: codes.InvalidArgument, wantMsg: "not clean"},
		{name: "eos outside the allowlist", attrs: map[string]string{"path": "/eos/cms"}, want: codes.InvalidArgument, wantMsg: "allowed prefixes: /eos/atlas"},
		{name: "typo in a key", attrs: map[string]string{"repo": "atlas.cern.ch"}, want: codes.InvalidArgument, wantMsg: `unknown keys ["repo"]`},
		{name: "unknown client configuration", attrs: map[string]string{"repository": "atlas.cern.ch", "clientConfig": "nope"}, want: codes.InvalidArgument, wantMsg: `client configuration "nope"`},
		{name: "empty repository on the node", attrs: map[string]string{"repository": "empty.cern.ch"}, want: codes.FailedPrecondition, wantMsg: "is empty"},
		{name: "repository missing on the node", attrs: map[string]string{"repository": "gone.example.org"}, want: codes.FailedPrecondition, wantMsg: "unavailable"},
		{name: "target outside the kubelet directory", target: filepath.Join(os.TempDir(), "elsewhere"), attrs: map[string]string{"repository": "atlas.cern.ch"},
			want: codes.InvalidArgument, wantMsg: "not below the kubelet directory"},
		{name: "target with traversal", target: e.cfg.KubeletDir + "/pods/pod-a/../../../x", attrs: map[string]string{"repository": "atlas.cern.ch"},
			want: codes.InvalidArgument, wantMsg: "clean absolute path"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.target
			if target == "" {
				target = e.target("pod-a", "bad")
			}
			id := tc.volumeID
			if id == "" {
				id = "csi-inline"
			}
			_, err := n.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target,
				VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY), VolumeContext: tc.attrs})
			if status.Code(err) != tc.want || !strings.Contains(status.Convert(err).Message(), tc.wantMsg) {
				t.Fatalf("error = %v, want %s containing %q", err, tc.want, tc.wantMsg)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("a refused publish left %s behind (%v)", target, err)
			}
		})
	}
	t.Run("block access", func(t *testing.T) {
		_, err := n.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v", TargetPath: e.target("pod-a", "blk"),
			VolumeCapability: &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
				AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY}},
			VolumeContext: map[string]string{"repository": "atlas.cern.ch"}})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("block: %v, want InvalidArgument", err)
		}
	})
}

func unpublish(t *testing.T, n csi.NodeClient, target string) {
	t.Helper()
	if _, err := n.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: "any", TargetPath: target}); err != nil {
		t.Errorf("unpublish %s: %v", target, err)
	}
	if _, mounted := mountAt(t, target); mounted {
		t.Errorf("%s still mounted after unpublish", target)
		_ = unix.Unmount(target, unix.MNT_DETACH)
	}
}

func mountsAt(t *testing.T, p string) []string {
	t.Helper()
	table, err := readTable()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range table {
		if m.MountPoint == p {
			out = append(out, m.Device+m.Root)
		}
	}
	return out
}
