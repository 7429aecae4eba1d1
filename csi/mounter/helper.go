package mounter

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultCVMFSHelper is where the CVMFS client package installs its mount helper, which mount(8) runs for
// "mount -t cvmfs".
const DefaultCVMFSHelper = "/sbin/mount.cvmfs"

// Helper mounts CVMFS with the client's mount helper: mount -t cvmfs [-o config=FILE] REPOSITORY TARGET.
// Each target gets its own FUSE mount (and cache use); prefer Bind when the node runs autofs. EOS is not
// supported by Helper (eosxd's mount configuration is site-specific); use Bind for EOS.
type Helper struct {
	// MountCommand runs mount(8); empty means "mount".
	MountCommand string
	// CVMFSHelper must exist for CVMFS mounts; empty means DefaultCVMFSHelper.
	CVMFSHelper string
	// Run executes a command; nil means os/exec. Tests replace it.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
}

var _ Mounter = Helper{}

// Command returns the command line that mounts v at target.
func (h Helper) Command(v Volume, target string) ([]string, error) {
	if v.Type != TypeCVMFS {
		return nil, fmt.Errorf("%w: the mount helper mounts CVMFS only, not %s", ErrUnsupported, v.Type)
	}
	mount := h.MountCommand
	if mount == "" {
		mount = "mount"
	}
	// CVMFS is read-only whatever was asked; cvmfs2 takes config=FILE[:FILE] for a non-default client
	// configuration.
	opts := []string{"ro", "nosuid", "nodev"}
	if v.ConfigFile != "" {
		opts = append(opts, "config="+v.ConfigFile)
	}
	return []string{mount, "-t", "cvmfs", "-o", strings.Join(opts, ","), v.Name, target}, nil
}

// Mount runs Command after checking that the helper is installed.
func (h Helper) Mount(ctx context.Context, v Volume, target string, _ bool) error {
	cmd, err := h.Command(v, target)
	if err != nil {
		return err
	}
	helper := h.CVMFSHelper
	if helper == "" {
		helper = DefaultCVMFSHelper
	}
	return runClient(ctx, h.Run, "CVMFS mount helper", helper, cmd)
}

// runClient runs a client's mount command after checking that the client's binary is installed; the error
// carries the command and its output.
func runClient(ctx context.Context, run func(context.Context, string, ...string) ([]byte, error), what, binary string, cmd []string) error {
	if _, err := os.Stat(binary); err != nil {
		return fmt.Errorf("%w: %s %s not installed: %v", ErrUnavailable, what, binary, err)
	}
	if run == nil {
		run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, name, args...).CombinedOutput()
		}
	}
	if out, err := run(ctx, cmd[0], cmd[1:]...); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(cmd, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Shows checks that entry is a FUSE mount whose "user.fqrn" extended attribute (the fully qualified
// repository name every CVMFS mount exposes) is v's repository.
func (h Helper) Shows(_ Table, entry Entry, v Volume) bool {
	if v.Type != TypeCVMFS || !strings.HasPrefix(entry.FSType, "fuse") {
		return false
	}
	buf := make([]byte, 256)
	n, err := unix.Getxattr(entry.MountPoint, "user.fqrn", buf)
	return err == nil && string(buf[:n]) == v.Name
}

// Identify returns the repository of a CVMFS FUSE mount (source "cvmfs2"), from its user.fqrn attribute.
func (h Helper) Identify(e Entry) (string, bool) {
	if e.Source != "cvmfs2" || !strings.HasPrefix(e.FSType, "fuse") {
		return "", false
	}
	buf := make([]byte, 256)
	n, err := unix.Getxattr(e.MountPoint, "user.fqrn", buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}
