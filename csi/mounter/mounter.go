package mounter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Volume types.
const (
	TypeCVMFS = "cvmfs"
	TypeEOS   = "eos"
)

// Volume is a validated request for one mount: the driver has checked the name against its allowlist.
type Volume struct {
	// Type is TypeCVMFS or TypeEOS.
	Type string
	// Name is the repository ("atlas.cern.ch") or the EOS path ("/eos/atlas/user").
	Name string
	// HostRoot is the node directory that stands for /cvmfs or /eos (Bind mounts HostRoot/<repository>
	// or HostRoot/<path below /eos>).
	HostRoot string
	// ConfigFile is the client configuration file for Helper; empty for the client's default.
	ConfigFile string
}

// HostPath is the node directory that shows the volume under HostRoot.
func (v Volume) HostPath() string {
	if v.Type == TypeEOS {
		return filepath.Join(v.HostRoot, strings.TrimPrefix(v.Name, "/eos"))
	}
	return filepath.Join(v.HostRoot, v.Name)
}

// Mounter mounts volumes and recognises its own mounts in the mount table.
type Mounter interface {
	// Mount makes target (an existing, empty directory) show v; read-only if readOnly.
	Mount(ctx context.Context, v Volume, target string, readOnly bool) error
	// Shows reports whether entry, the topmost mount at a target, shows v.
	Shows(t Table, entry Entry, v Volume) bool
}

// Errors the driver maps to CSI status codes.
var (
	// ErrUnavailable: the volume's source is missing or empty on this node (client not installed or
	// misconfigured, repository not served).
	ErrUnavailable = errors.New("volume source unavailable on this node")
	// ErrUnsupported: this mounter cannot mount this type of volume.
	ErrUnsupported = errors.New("volume type not supported by this mounter")
)

// Bind bind-mounts the node's client directories (see the package doc).
type Bind struct{}

var _ Mounter = Bind{}

// Mount bind-mounts v.HostPath() at target, read-only when asked, and always nosuid and nodev. CVMFS is
// always read-only. A CVMFS repository that is missing or empty on the node is refused (ErrUnavailable)
// rather than mounted empty: an empty /cvmfs/<repo> is the classic sign of a misconfigured client.
func (Bind) Mount(_ context.Context, v Volume, target string, readOnly bool) error {
	src, err := filepath.EvalSymlinks(v.HostPath()) // also triggers autofs
	if err != nil {
		return fmt.Errorf("%w: %s %s at %s: %v", ErrUnavailable, v.Type, v.Name, v.HostPath(), err)
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: %s %s: %s is not a directory", ErrUnavailable, v.Type, v.Name, src)
	}
	if v.Type == TypeCVMFS {
		readOnly = true
		if empty, err := emptyDir(src); err != nil || empty {
			return fmt.Errorf("%w: CVMFS repository %s is empty at %s: check the node's CVMFS client configuration (CVMFS_REPOSITORIES, proxies)", ErrUnavailable, v.Name, src)
		}
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting %s at %s: %w", src, target, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		// Never leave a writable CVMFS mount behind.
		_ = unix.Unmount(target, 0)
		return fmt.Errorf("remounting %s with nosuid,nodev (read-only %t): %w", target, readOnly, err)
	}
	return nil
}

// Shows compares origins: a bind mount of the host directory has the same device and root.
func (Bind) Shows(t Table, entry Entry, v Volume) bool {
	src, err := filepath.EvalSymlinks(v.HostPath())
	if err != nil {
		return false
	}
	o, ok := t.OriginOf(src)
	return ok && o == entry.Origin()
}

func emptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// Unmount unmounts target until it is no longer a mount point (a target may carry stacked mounts after a
// failed retry) and removes the directory. A target that does not exist is not an error.
func Unmount(tableFile, target string) error {
	for i := 0; ; i++ {
		t, err := ReadTable(tableFile)
		if err != nil {
			return err
		}
		if _, mounted := t.At(target); !mounted {
			break
		}
		if i == 16 {
			return fmt.Errorf("%s is still a mount point after %d unmounts", target, i)
		}
		if err := unix.Unmount(target, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmounting %s: %w", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", target, err)
	}
	return nil
}
