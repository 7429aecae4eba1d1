package realnode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const cgroupFS = "/sys/fs/cgroup"

// cgroupV2 reports whether the host runs the unified hierarchy.
func cgroupV2() bool {
	var st syscall.Statfs_t
	// CGROUP2_SUPER_MAGIC
	return syscall.Statfs(cgroupFS, &st) == nil && st.Type == 0x63677270
}

// cgroupVersionConfig is the kubelet configuration the host's cgroup version needs. Kubernetes 1.35 made the
// kubelet refuse cgroup v1 unless failCgroupV1 is false; v2 needs nothing.
func cgroupVersionConfig() string {
	if cgroupV2() {
		return ""
	}
	return "failCgroupV1: false"
}

// cgroupHierarchies are the directories a cgroup path is created in: the unified root on v2, each mounted
// v1 hierarchy otherwise.
func cgroupHierarchies() ([]string, error) {
	if cgroupV2() {
		return []string{cgroupFS}, nil
	}
	entries, err := os.ReadDir(cgroupFS)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(cgroupFS, e.Name())
		if st, err := os.Lstat(p); err != nil || !st.IsDir() {
			continue // symlinks such as cpu,cpuacct -> cpu
		}
		if _, err := os.Stat(filepath.Join(p, "cgroup.procs")); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// createCgroup creates path (e.g. /kubehtc-ab12/kubehtc-real-0) in every hierarchy: the kubelet requires its
// --cgroup-root to exist. New v1 cpuset cgroups start with no CPUs and memory nodes; they get their parent's.
// On v2 the controllers are enabled for the children on the way down.
func createCgroup(path string) error {
	hs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for _, h := range hs {
		dir := h
		for _, p := range parts {
			parent := dir
			dir = filepath.Join(dir, p)
			if cgroupV2() {
				if ctl, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers")); err == nil {
					var enable []string
					for _, c := range strings.Fields(string(ctl)) {
						enable = append(enable, "+"+c)
					}
					_ = os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte(strings.Join(enable, " ")), 0o644)
				}
			}
			if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
				return fmt.Errorf("creating cgroup %s: %w", dir, err)
			}
			if filepath.Base(h) == "cpuset" {
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					cur, _ := os.ReadFile(filepath.Join(dir, f))
					if len(bytes.TrimSpace(cur)) > 0 {
						continue
					}
					v, err := os.ReadFile(filepath.Join(parent, f))
					if err != nil {
						return err
					}
					if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
						return fmt.Errorf("setting %s of %s: %w", f, dir, err)
					}
				}
			}
		}
	}
	return nil
}

// killCgroupProcs SIGKILLs every process in the cgroup subtree path (containers a killed shim left).
func killCgroupProcs(path string) error {
	hs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	for _, h := range hs {
		root := filepath.Join(h, path)
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
	return nil
}

// removeCgroupTree removes path and every cgroup below it in every hierarchy, deepest first. A cgroup whose
// last process just died may be busy for a moment; it retries for a few seconds.
func removeCgroupTree(path string) error {
	hs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	_ = killCgroupProcs(path)
	var errs []error
	for _, h := range hs {
		root := filepath.Join(h, path)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
		for _, d := range dirs {
			var err error
			for range 50 {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// cgroupsLeft lists the hierarchies in which path still exists.
func cgroupsLeft(path string) []string {
	hs, _ := cgroupHierarchies()
	var out []string
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h, path)); err == nil {
			out = append(out, filepath.Join(h, path))
		}
	}
	return out
}

// hostState is what Start compares against to find what the nodes left on the host.
type hostState struct {
	links    []string
	netns    []string
	mounts   []string
	iptables []string
}

// netnsDirs are where containerd's CRI (1.6 and 2.x) bind-mounts pod network namespaces.
var netnsDirs = []string{"/run/netns", "/var/run/netns"}

func snapshotHost() (hostState, error) {
	var s hostState
	links, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return s, err
	}
	for _, l := range links {
		s.links = append(s.links, l.Name())
	}
	s.iptables = iptablesRules()
	seen := map[string]bool{}
	for _, d := range netnsDirs {
		real, err := filepath.EvalSymlinks(d)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		entries, _ := os.ReadDir(real)
		for _, e := range entries {
			s.netns = append(s.netns, filepath.Join(real, e.Name()))
		}
		m, err := mountsUnder(real)
		if err != nil {
			return s, err
		}
		s.mounts = append(s.mounts, m...)
	}
	return s, nil
}

// minus lists what s has and before had not.
func (s hostState) minus(before hostState) []string {
	var out []string
	for _, l := range s.links {
		if !slices.Contains(before.links, l) {
			out = append(out, "network device "+l)
		}
	}
	for _, n := range s.netns {
		if !slices.Contains(before.netns, n) {
			out = append(out, "network namespace "+n)
		}
	}
	for _, m := range s.mounts {
		if !slices.Contains(before.mounts, m) {
			out = append(out, "mount "+m)
		}
	}
	for _, r := range s.iptables {
		if !slices.Contains(before.iptables, r) {
			out = append(out, "iptables "+r)
		}
	}
	return out
}

// iptablesRules lists the host's iptables chains and rules (IPv4, every table), without counters; nil when
// iptables is not installed.
func iptablesRules() []string {
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		return nil
	}
	var rules []string
	table := ""
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":"):
			rules = append(rules, table+" "+strings.Fields(l)[0])
		case strings.HasPrefix(l, "-"):
			rules = append(rules, table+" "+l)
		}
	}
	return rules
}

// mountsUnder lists the mount points at or below dir, deepest last (as /proc/self/mountinfo orders them).
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, sc.Err()
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder lazily unmounts every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	var errs []error
	for range 3 {
		mounts, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		errs = errs[:0]
		slices.SortFunc(mounts, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
		for _, m := range mounts {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
			}
		}
	}
	return errors.Join(errs...)
}

// killShims SIGKILLs the runc shims serving the containerd at socket (they daemonize out of its process
// group).
func killShims(socket string) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("containerd-shim")) || !bytes.Contains(cmdline, []byte(socket)) {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

// deleteBridge deletes the veths still enslaved to bridge, then the bridge (absent: nothing to do).
func deleteBridge(bridge string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", bridge)); os.IsNotExist(err) {
		return nil
	}
	var errs []error
	ports, _ := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	for _, p := range ports {
		if out, err := exec.Command("ip", "link", "delete", p.Name()).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s of bridge %s: %w: %s", p.Name(), bridge, err, out))
		}
	}
	if out, err := exec.Command("ip", "link", "delete", bridge).CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("deleting bridge %s: %w: %s", bridge, err, out))
	}
	return errors.Join(errs...)
}

// Check reports what real nodes need and the host lacks: root, cgroups, the Debian binaries.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("real nodes need root (containers, cgroups, network devices)")
	}
	if _, err := os.Stat(filepath.Join(cgroupFS)); err != nil {
		return fmt.Errorf("real nodes need cgroups mounted at %s: %w", cgroupFS, err)
	}
	var missing []string
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc", "docker-registry", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if !isExecutable(filepath.Join(cniBinDir, p)) {
			missing = append(missing, filepath.Join(cniBinDir, p))
		}
	}
	if !isExecutable(busyboxPath) {
		missing = append(missing, busyboxPath)
	}
	if len(missing) > 0 {
		return fmt.Errorf("real nodes need %s (run hack/ensure-realnode-deps.sh)", strings.Join(missing, ", "))
	}
	return nil
}

// removeUnusedNetns unmounts and removes the network namespaces under the netns directories that did not
// exist at Start (before) and that no process is in. containerd 1.6 leaves the namespace of a sandbox whose
// creation failed (it never lists that sandbox again, so RemovePodSandbox cannot reach it); a namespace that
// a process still uses belongs to someone else and is left alone.
func removeUnusedNetns(before hostState) error {
	now, err := snapshotHost()
	if err != nil {
		return err
	}
	used := map[uint64]bool{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", p.Name(), "ns", "net"), &st) == nil {
			used[st.Ino] = true
		}
	}
	var errs []error
	for _, n := range now.netns {
		if slices.Contains(before.netns, n) {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(n, &st); err != nil || used[st.Ino] {
			continue
		}
		if err := syscall.Unmount(n, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting network namespace %s: %w", n, err))
			continue
		}
		if err := os.Remove(n); err != nil {
			errs = append(errs, fmt.Errorf("removing network namespace %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}
