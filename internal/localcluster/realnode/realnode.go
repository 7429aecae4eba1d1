package realnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"
)

// Labels every real node carries, so that workloads and tests can target (or avoid) real nodes.
const (
	// KindLabel tells a real node from a simulated one.
	KindLabel = "kubehtc.io/node-kind"
	// KindReal is KindLabel's value on real nodes.
	KindReal = "real"
)

// Options configure the real nodes.
type Options struct {
	// Dir holds every node's files (kubelet root, containerd root and state, CNI configuration, logs) and the
	// registry's storage. Required; Stop removes it.
	Dir string
	// Kubeconfig is the kubeconfig the kubelets register with. Required.
	Kubeconfig string
	// Count is the number of nodes (at least 1).
	Count int
	// NamePrefix is prepended to the node index to form the node name; empty means "kubehtc-real-".
	NamePrefix string
	// KubeletBinary is the kubelet to run. Empty: $KUBEHTC_KUBELET, else a kubelet next to the running
	// executable, else `go build k8s.io/kubernetes/cmd/kubelet` into the user cache directory (once).
	KubeletBinary string
	// ContainerdBinary is the containerd to run; empty means "containerd" from PATH (Debian's).
	ContainerdBinary string
	// Verbosity is the kubelet's -v.
	Verbosity int
}

// Nodes is a running set of real nodes and their registry.
type Nodes struct {
	// Dir is Options.Dir.
	Dir string
	// Registry is the local registry's host:port; images pushed there can be pulled by the nodes.
	Registry string
	// BusyboxImage is an image in Registry whose /bin holds busybox and its applets (sh, echo, cat, sleep,
	// ...); its default command is sh.
	BusyboxImage string
	// Nodes are the nodes, in index order.
	Nodes []*Node

	opts     Options
	id       string
	before   hostState
	registry *process
}

// Start checks the prerequisites, starts the registry, pushes the busybox and sandbox images, starts every
// node's containerd and kubelet, and returns once every node has registered (not necessarily Ready: see
// WaitReady). On error, what was started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Nodes, rerr error) {
	if opts.Dir == "" || opts.Kubeconfig == "" {
		return nil, errors.New("realnode: Options.Dir and Options.Kubeconfig are required")
	}
	if opts.Count < 1 {
		return nil, fmt.Errorf("realnode: Options.Count is %d, want at least 1", opts.Count)
	}
	if opts.NamePrefix == "" {
		opts.NamePrefix = "kubehtc-real-"
	}
	if opts.ContainerdBinary == "" {
		opts.ContainerdBinary = "containerd"
	}
	if err := Check(); err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx)
	if opts.KubeletBinary == "" {
		bin, err := findKubelet(ctx)
		if err != nil {
			return nil, err
		}
		opts.KubeletBinary = bin
	}
	idb := make([]byte, 2)
	_, _ = rand.Read(idb)
	s := &Nodes{Dir: opts.Dir, opts: opts, id: hex.EncodeToString(idb)}
	var err error
	if s.before, err = snapshotHost(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "logs"), 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if rerr != nil {
			rerr = errors.Join(rerr, s.Stop())
		}
	}()
	if err := s.startRegistry(ctx); err != nil {
		return nil, err
	}
	pause, err := s.pushImages(ctx)
	if err != nil {
		return nil, err
	}
	// A /24 per node out of a /16 chosen from the id, so that two clusters on one host rarely collide.
	second := 100 + int(idb[0])%100
	for i := range opts.Count {
		n := &Node{
			Name:    fmt.Sprintf("%s%d", opts.NamePrefix, i),
			Index:   i,
			Dir:     filepath.Join(opts.Dir, fmt.Sprintf("node-%d", i)),
			PodCIDR: fmt.Sprintf("10.%d.%d.0/24", second, i),
			IP:      fmt.Sprintf("10.%d.%d.1", second, i),
			Bridge:  fmt.Sprintf("khtc%sb%d", s.id, i),
			set:     s,
		}
		n.CgroupRoot = "/kubehtc-" + s.id + "/" + n.Name
		s.Nodes = append(s.Nodes, n)
		if err := n.start(ctx, pause); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		logger.V(1).Info("Real node started", "node", n.Name, "dir", n.Dir)
	}
	return s, nil
}

// Stop stops every node (pods first, through the CRI), the registry, and removes what the nodes made on the
// host (see the package doc) and Dir. It is safe to call on a partly started set.
func (s *Nodes) Stop() error {
	var errs []error
	for i := len(s.Nodes) - 1; i >= 0; i-- {
		errs = append(errs, s.Nodes[i].stop())
	}
	errs = append(errs, s.registry.stop())
	errs = append(errs, removeUnusedNetns(s.before))
	errs = append(errs, removeCgroupTree("/kubehtc-"+s.id))
	errs = append(errs, unmountUnder(s.Dir))
	if left, err := mountsUnder(s.Dir); err != nil || len(left) > 0 {
		errs = append(errs, fmt.Errorf("mounts left under %s: %v %w", s.Dir, left, err))
	} else {
		errs = append(errs, os.RemoveAll(s.Dir))
	}
	return errors.Join(errs...)
}

// Leftovers lists what the nodes made on the host and is still there: mounts under Dir, and network devices
// (the bridges and veths), network namespaces and their mounts, iptables chains and rules, and cgroups that
// did not exist at Start. Empty after a
// successful Stop.
func (s *Nodes) Leftovers() ([]string, error) {
	now, err := snapshotHost()
	if err != nil {
		return nil, err
	}
	left := now.minus(s.before)
	mounts, err := mountsUnder(s.Dir)
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		left = append(left, "mount "+m)
	}
	for _, c := range cgroupsLeft("/kubehtc-" + s.id) {
		left = append(left, "cgroup "+c)
	}
	return left, nil
}

// findKubelet returns the kubelet to run (see Options.KubeletBinary).
func findKubelet(ctx context.Context) (string, error) {
	if p := os.Getenv("KUBEHTC_KUBELET"); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "kubelet"); isExecutable(p) {
			return p, nil
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no kubelet: set KUBEHTC_KUBELET (%w)", err)
	}
	bin := filepath.Join(cache, "kubehtc", "kubelet-"+kubeletVersion)
	if isExecutable(bin) {
		return bin, nil
	}
	klog.FromContext(ctx).Info("Building the kubelet (once)", "version", kubeletVersion, "output", bin)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin+".tmp", "-ldflags", versionLDFlags, "k8s.io/kubernetes/cmd/kubelet")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the kubelet (run in the kubehtc checkout, or set KUBEHTC_KUBELET): %w\n%s", err, out)
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		return "", err
	}
	klog.FromContext(ctx).Info("Built the kubelet", "duration", time.Since(start))
	return bin, nil
}

// kubeletVersion names the cached kubelet build; it is the k8s.io/kubernetes version in go.mod.
const kubeletVersion = "v1.37.1"

// versionLDFlags stamp the version a release build has (the module build says v0.0.0-master otherwise), so the
// node reports kubeletVersion.
const versionLDFlags = "-X k8s.io/component-base/version.gitVersion=" + kubeletVersion + " -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
