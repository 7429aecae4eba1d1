package mounter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sampleMountInfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /cvmfs rw,relatime shared:5 - autofs systemd-1 rw,fd=5
31 30 0:51 / /cvmfs/atlas.cern.ch ro,nosuid,nodev,relatime shared:6 - fuse cvmfs2 ro,user_id=0
40 22 0:51 / /var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/atlas/mount ro,nosuid,nodev,relatime shared:6 - fuse cvmfs2 ro,user_id=0
41 22 8:1 /srv/eos/atlas/u /var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/eos/mount rw,nosuid,nodev shared:1 - ext4 /dev/sda1 rw
42 22 8:1 /a\040b /mnt/with\040space rw - ext4 /dev/sda1 rw
`

func TestParseTable(t *testing.T) {
	table, err := ParseTable(strings.NewReader(sampleMountInfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(table) != 6 {
		t.Fatalf("%d entries, want 6", len(table))
	}
	want := Entry{ID: 31, Parent: 30, Device: "0:51", Root: "/", MountPoint: "/cvmfs/atlas.cern.ch",
		Options: []string{"ro", "nosuid", "nodev", "relatime"}, FSType: "fuse", Source: "cvmfs2"}
	if diff := cmp.Diff(want, table[2]); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	if e, ok := table.At("/mnt/with space"); !ok || e.Root != "/a b" {
		t.Errorf("escaped entry: %+v %t", e, ok)
	}
	// A bind mount of the node's repository has the repository's origin.
	o, ok := table.OriginOf("/cvmfs/atlas.cern.ch")
	if !ok || o != table[3].Origin() {
		t.Errorf("OriginOf(/cvmfs/atlas.cern.ch) = %+v, want %+v", o, table[3].Origin())
	}
	// A plain directory's origin is its path inside the containing filesystem.
	if o, _ := table.OriginOf("/srv/eos/atlas/u"); o != (Origin{Device: "8:1", Root: "/srv/eos/atlas/u"}) || o != table[4].Origin() {
		t.Errorf("OriginOf(/srv/eos/atlas/u) = %+v", o)
	}
	if got := len(table.Under("/var/lib/kubelet")); got != 2 {
		t.Errorf("Under(kubelet) = %d entries, want 2", got)
	}
	for _, bad := range []string{"1 2 3", "x 2 8:1 / / rw - ext4 s rw", "1 2 8:1 / / rw ext4 s rw", `1 2 8:1 /\04 / rw - ext4 s rw`} {
		if _, err := ParseTable(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseTable(%q) accepted", bad)
		}
	}
}

func FuzzParseTable(f *testing.F) {
	f.Add(sampleMountInfo)
	f.Add(`1 2 8:1 /\134 /x\011y rw - t s rw`)
	f.Fuzz(func(t *testing.T, s string) {
		table, err := ParseTable(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, e := range table {
			if !strings.Contains(e.Device, ":") || e.FSType == "" {
				t.Fatalf("accepted entry %+v", e)
			}
			if o, ok := table.OriginOf(e.MountPoint); ok && o.Device == "" {
				t.Fatalf("origin without device: %+v", o)
			}
		}
	})
}

func TestHelper(t *testing.T) {
	var ran []string
	h := Helper{CVMFSHelper: filepath.Join(t.TempDir(), "mount.cvmfs"), Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
		ran = append([]string{name}, args...)
		return nil, nil
	}}
	v := Volume{Type: TypeCVMFS, Name: "atlas.cern.ch", ConfigFile: "/etc/cvmfs/alt.conf"}
	cmd, err := h.Command(v, "/t")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"mount", "-t", "cvmfs", "-o", "ro,nosuid,nodev,config=/etc/cvmfs/alt.conf", "atlas.cern.ch", "/t"}
	if diff := cmp.Diff(want, cmd); diff != "" {
		t.Errorf("command (-want,+got):\n%s", diff)
	}
	// The CVMFS client is not installed here (it is not packaged for this machine): a clear error.
	err = h.Mount(context.Background(), v, "/t", false)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "mount helper") || ran != nil {
		t.Errorf("without the helper: %v (ran %v)", err, ran)
	}
	if err := os.WriteFile(h.CVMFSHelper, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.Mount(context.Background(), v, "/t", false); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, ran); diff != "" {
		t.Errorf("ran (-want,+got):\n%s", diff)
	}
	h.Run = func(context.Context, string, ...string) ([]byte, error) {
		return []byte("mount: failed to mount atlas.cern.ch\n"), errors.New("exit status 32")
	}
	if err := h.Mount(context.Background(), v, "/t", false); err == nil || !strings.Contains(err.Error(), "failed to mount atlas.cern.ch") {
		t.Errorf("failing helper: %v, want its output in the error", err)
	}
	if _, err := h.Command(Volume{Type: TypeEOS, Name: "/eos/a"}, "/t"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("EOS with the helper: %v, want ErrUnsupported", err)
	}
}

func TestEOSHelper(t *testing.T) {
	var ran []string
	h := EOSHelper{EOSXD: filepath.Join(t.TempDir(), "eosxd"), Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
		ran = append([]string{name}, args...)
		return nil, nil
	}}
	v := Volume{Type: TypeEOS, Name: "/eos/atlas"}
	want := []string{"mount", "-t", "fuse", "-o", "fsname=atlas,nosuid,nodev,ro", "eosxd", "/t"}
	// The EOS client is not packaged for this machine: a clear error, nothing run.
	if err := h.Mount(context.Background(), v, "/t", true); !errors.Is(err, ErrUnavailable) || ran != nil {
		t.Errorf("without eosxd: %v (ran %v)", err, ran)
	}
	if err := os.WriteFile(h.EOSXD, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.Mount(context.Background(), v, "/t", true); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, ran); diff != "" {
		t.Errorf("ran (-want,+got):\n%s", diff)
	}
	for _, bad := range []Volume{{Type: TypeEOS, Name: "/eos/atlas/user"}, {Type: TypeEOS, Name: "/eos/"}, {Type: TypeCVMFS, Name: "atlas.cern.ch"}} {
		if _, err := h.Command(bad, "/t", true); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Command(%+v) = %v, want ErrUnsupported", bad, err)
		}
	}
	entry := Entry{MountPoint: "/t", FSType: "fuse.eosxd", Source: "atlas"}
	if !h.Shows(nil, entry, v) || h.Shows(nil, entry, Volume{Type: TypeEOS, Name: "/eos/cms"}) {
		t.Errorf("Shows: want true for /eos/atlas only")
	}
	if p, ok := h.Identify(entry); !ok || p != "/eos/atlas" {
		t.Errorf("Identify = %q, %v", p, ok)
	}
	if _, ok := h.Identify(Entry{FSType: "fuse", Source: "cvmfs2"}); ok {
		t.Errorf("Identify took a CVMFS mount for EOS")
	}
}
