package mounter

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
)

// Entry is one line of /proc/<pid>/mountinfo (proc(5)).
type Entry struct {
	// ID and Parent are the mount IDs of this mount and of its parent.
	ID, Parent int
	// Device is "major:minor" of the filesystem.
	Device string
	// Root is the directory of the filesystem that is mounted here: "/" for a whole filesystem, the
	// directory's path inside the filesystem for a bind mount.
	Root string
	// MountPoint is where it is mounted, in the reading process's mount namespace.
	MountPoint string
	// Options are the per-mount options ("ro", "nosuid", ...).
	Options []string
	// FSType and Source describe the filesystem ("fuse", "cvmfs2").
	FSType, Source string
}

// ReadOnly reports whether the mount is read-only.
func (e Entry) ReadOnly() bool {
	for _, o := range e.Options {
		if o == "ro" {
			return true
		}
	}
	return false
}

// Table is a mount table, in the order of the file (later entries are mounted over earlier ones).
type Table []Entry

// ProcMountInfo is the mount table of the calling process.
const ProcMountInfo = "/proc/self/mountinfo"

// ReadTable reads and parses a mountinfo file.
func ReadTable(file string) (Table, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseTable(bytes.NewReader(data))
}

// ParseTable parses the mountinfo format: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw".
func ParseTable(r io.Reader) (Table, error) {
	var t Table
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		e, err := parseEntry(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		t = append(t, e)
	}
	return t, sc.Err()
}

func parseEntry(line string) (Entry, error) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 7 || sep < 0 || len(f) < sep+3 {
		return Entry{}, fmt.Errorf("malformed entry %q", line)
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || !strings.Contains(f[2], ":") {
		return Entry{}, fmt.Errorf("malformed ids or device in %q", line)
	}
	root, err1 := unescape(f[3])
	mp, err2 := unescape(f[4])
	src, err3 := unescape(f[sep+2])
	if err1 != nil || err2 != nil || err3 != nil {
		return Entry{}, fmt.Errorf("bad escape in %q", line)
	}
	return Entry{ID: id, Parent: parent, Device: f[2], Root: root, MountPoint: mp,
		Options: strings.Split(f[5], ","), FSType: f[sep+1], Source: src}, nil
}

// unescape decodes the octal escapes (\040 for space, \011, \012, \134) the kernel uses in mountinfo.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("truncated escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// At returns the topmost entry mounted at mountPoint.
func (t Table) At(mountPoint string) (Entry, bool) {
	for i := len(t) - 1; i >= 0; i-- {
		if t[i].MountPoint == mountPoint {
			return t[i], true
		}
	}
	return Entry{}, false
}

// Under returns the entries whose mount point is dir or below it.
func (t Table) Under(dir string) []Entry {
	var out []Entry
	for _, e := range t {
		if within(e.MountPoint, dir) {
			out = append(out, e)
		}
	}
	return out
}

// Origin is what a bind mount of a directory shows: a filesystem (Device) and a directory in it (Root).
// Two mounts show the same directory exactly when their Origins are equal, which is how the driver
// recognises its own bind mounts after a restart, without state of its own and without touching autofs.
type Origin struct {
	Device, Root string
}

// Origin returns the origin of an entry.
func (e Entry) Origin() Origin { return Origin{Device: e.Device, Root: e.Root} }

// OriginOf returns the origin of host directory p (an absolute, symlink-free path): the filesystem of the
// topmost mount containing p, and p's path inside it.
func (t Table) OriginOf(p string) (Origin, bool) {
	best := -1
	for i, e := range t {
		if within(p, e.MountPoint) && (best < 0 || len(e.MountPoint) >= len(t[best].MountPoint)) {
			best = i
		}
	}
	if best < 0 {
		return Origin{}, false
	}
	e := t[best]
	rel := strings.TrimPrefix(p, e.MountPoint)
	return Origin{Device: e.Device, Root: path.Join(e.Root, "/"+rel)}, true
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}
