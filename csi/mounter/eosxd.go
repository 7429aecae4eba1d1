package mounter

import (
	"context"
	"fmt"
	"strings"
)

// DefaultEOSXD is where the EOS FUSE client package (eos-fusex) installs eosxd.
const DefaultEOSXD = "/usr/bin/eosxd"

// EOSHelper mounts EOS with the EOS FUSE client: mount -t fuse -o fsname=INSTANCE,... eosxd TARGET. mount(8)
// hands this to mount.fuse, which starts eosxd; eosxd reads the site's instance configuration
// /etc/eos/fuse.INSTANCE.conf (MGM host, remote mount directory, authentication). A volume is one whole
// instance, /eos/INSTANCE: eosxd mounts what the instance configuration names, so a sub-path such as
// /eos/atlas/user is refused (ErrUnsupported) — sites that hand out sub-paths run eosxd under autofs on the
// node and use Bind.
type EOSHelper struct {
	// MountCommand runs mount(8); empty means "mount".
	MountCommand string
	// EOSXD must exist for EOS mounts; empty means DefaultEOSXD.
	EOSXD string
	// Run executes a command; nil means os/exec. Tests replace it.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
}

var _ Mounter = EOSHelper{}

// eosInstance returns INSTANCE of /eos/INSTANCE, or an error for anything deeper or shallower.
func eosInstance(name string) (string, error) {
	rest, ok := strings.CutPrefix(name, "/eos/")
	if !ok || rest == "" || strings.Contains(strings.TrimSuffix(rest, "/"), "/") {
		return "", fmt.Errorf("%w: eosxd mounts a whole EOS instance (/eos/<instance>), not %q; use the bind mounter for sub-paths", ErrUnsupported, name)
	}
	return strings.TrimSuffix(rest, "/"), nil
}

// Command returns the command line that mounts v at target.
func (h EOSHelper) Command(v Volume, target string, readOnly bool) ([]string, error) {
	if v.Type != TypeEOS {
		return nil, fmt.Errorf("%w: eosxd mounts EOS only, not %s", ErrUnsupported, v.Type)
	}
	instance, err := eosInstance(v.Name)
	if err != nil {
		return nil, err
	}
	mount := h.MountCommand
	if mount == "" {
		mount = "mount"
	}
	opts := []string{"fsname=" + instance, "nosuid", "nodev"}
	if readOnly {
		opts = append(opts, "ro")
	}
	return []string{mount, "-t", "fuse", "-o", strings.Join(opts, ","), "eosxd", target}, nil
}

// Mount runs Command after checking that eosxd is installed.
func (h EOSHelper) Mount(ctx context.Context, v Volume, target string, readOnly bool) error {
	cmd, err := h.Command(v, target, readOnly)
	if err != nil {
		return err
	}
	bin := h.EOSXD
	if bin == "" {
		bin = DefaultEOSXD
	}
	return runClient(ctx, h.Run, "EOS FUSE client", bin, cmd)
}

// Shows checks that entry is an eosxd FUSE mount (type fuse.eosxd) of v's instance (its fsname, the source
// column of the mount table).
func (h EOSHelper) Shows(_ Table, entry Entry, v Volume) bool {
	instance, err := eosInstance(v.Name)
	return err == nil && entry.FSType == "fuse.eosxd" && entry.Source == instance
}

// Identify returns the EOS path (/eos/INSTANCE) of an eosxd mount.
func (h EOSHelper) Identify(e Entry) (string, bool) {
	if e.FSType != "fuse.eosxd" || e.Source == "" {
		return "", false
	}
	return "/eos/" + e.Source, true
}
