// Package testenv starts the real lazy-pulling chain on this machine for the integration test and the
// benchmark: a distribution registry on a loopback port behind a byte-counting reverse proxy, Debian's
// containerd with a private root, state and socket, and kubehtc-snapshotter as its proxy plugin. Close stops
// every process it started (and the shims of its containerd), unmounts what is mounted under its directory and
// removes the directory.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/kubehtc/kubehtc/snapshotter"
	"github.com/kubehtc/kubehtc/snapshotter/daemon"
)

// Namespace is the containerd namespace the environment works in.
const Namespace = "kubehtc-lazypull"

// SnapshotterName is the proxy plugin's name in the environment's containerd.
const SnapshotterName = "stargz"

// Options configure an Env.
type Options struct {
	// Dir is the scratch directory (created; removed by Close). Empty: a new directory under /var/tmp
	// (overlayfs upper directories cannot live on tmpfs with every kernel).
	Dir string
	// SnapshotterBinary is kubehtc-snapshotter's path. Empty: built from this module with `go build`.
	SnapshotterBinary string
	// BackgroundFetch turns the snapshotter's background fetch on; off keeps registry traffic to what is read.
	BackgroundFetch bool
	// CRI runs containerd's CRI plugin configured by the rendered node fragment (snapshotter, snapshot
	// annotations), as a kubelet's node has it; its CNI and streaming server are kept private. Off: no CRI.
	CRI bool
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// Env is a running registry + counting proxy + containerd + kubehtc-snapshotter.
type Env struct {
	opts Options
	// Dir is the scratch directory.
	Dir string
	// RegistryHost is the registry's host:port (push here: it is not counted).
	RegistryHost string
	// ProxyHost is the counting proxy's host:port in front of the registry (pull from here).
	ProxyHost string
	// Client is a containerd client in Namespace; replaced by Restart.
	Client *containerd.Client

	fetched     atomic.Int64
	proxy       *http.Server
	registry    *process
	containerd  *process
	snapshotter *process
}

type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Start checks the prerequisites (FUSE, the Debian binaries) and starts everything. On error, what was started
// is stopped again.
func Start(ctx context.Context, opts Options) (_ *Env, rerr error) {
	if err := daemon.CheckFUSE(); err != nil {
		return nil, err
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc", "docker-registry"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s is not installed (run hack/ensure-lazypull-deps.sh): %w", bin, err)
		}
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("/var/tmp", "kubehtc-lazypull-")
		if err != nil {
			return nil, fmt.Errorf("creating scratch directory: %w", err)
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating scratch directory: %w", err)
	}
	e := &Env{opts: opts, Dir: dir}
	defer func() {
		if rerr != nil {
			rerr = errors.Join(rerr, e.Close())
		}
	}()
	for _, sub := range []string{"logs", "registry"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	if e.opts.SnapshotterBinary == "" {
		bin := filepath.Join(dir, "kubehtc-snapshotter")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin,
			"github.com/kubehtc/kubehtc/cmd/kubehtc-snapshotter").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("building kubehtc-snapshotter: %w\n%s", err, out)
		}
		e.opts.SnapshotterBinary = bin
	}
	if err := e.startRegistry(ctx); err != nil {
		return nil, err
	}
	if err := e.startProxy(); err != nil {
		return nil, err
	}
	if err := e.startNode(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// FetchedBytes is the number of response-body bytes the registry served through the proxy since the last
// ResetFetched.
func (e *Env) FetchedBytes() int64 { return e.fetched.Load() }

// ResetFetched zeroes the fetched-bytes counter.
func (e *Env) ResetFetched() { e.fetched.Store(0) }

func (e *Env) startRegistry(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	e.RegistryHost = fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(e.Dir, "registry", "data"), e.RegistryHost)
	path := filepath.Join(e.Dir, "registry", "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	e.registry, err = e.spawn("registry", "docker-registry", "serve", path)
	if err != nil {
		return err
	}
	return e.waitFor(ctx, e.registry, func() bool {
		resp, err := http.Get("http://" + e.RegistryHost + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// startProxy puts a reverse proxy that counts response bytes in front of the registry.
func (e *Env) startProxy() error {
	target, _ := url.Parse("http://" + e.RegistryHost)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &e.fetched}
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening for the proxy: %w", err)
	}
	e.ProxyHost = l.Addr().String()
	e.proxy = &http.Server{Handler: rp, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = e.proxy.Serve(l) }()
	return nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (e *Env) snapshotterDir() string { return filepath.Join(e.Dir, "snapshotter") }
func (e *Env) containerdDir() string  { return filepath.Join(e.Dir, "containerd") }

// SnapshotterSocket is the path of the snapshotter's socket.
func (e *Env) SnapshotterSocket() string {
	return filepath.Join(e.snapshotterDir(), "snapshotter.sock")
}

// ContainerdSocket is the path of containerd's socket.
func (e *Env) ContainerdSocket() string { return filepath.Join(e.containerdDir(), "containerd.sock") }

// startNode starts the snapshotter, then containerd (which connects to it), then the client.
func (e *Env) startNode(ctx context.Context) error {
	for _, d := range []string{e.snapshotterDir(), e.containerdDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	bg := e.opts.BackgroundFetch
	site := &snapshotter.Site{PluginName: SnapshotterName, DisableCRI: !e.opts.CRI, Snapshotter: snapshotter.Config{
		Address:         e.SnapshotterSocket(),
		Root:            filepath.Join(e.snapshotterDir(), "root"),
		BackgroundFetch: &bg,
		Registries:      []snapshotter.RegistryConfig{{Host: e.ProxyHost, Insecure: true}},
	}}
	site.SetDefaults()
	if err := site.Validate(); err != nil {
		return err
	}
	scfg, err := snapshotter.RenderSnapshotterConfig(&site.Snapshotter)
	if err != nil {
		return err
	}
	scfgPath := filepath.Join(e.snapshotterDir(), "config.toml")
	if err := os.WriteFile(scfgPath, []byte(scfg), 0o600); err != nil {
		return err
	}
	e.snapshotter, err = e.spawn("snapshotter", e.opts.SnapshotterBinary, "-config", scfgPath, "-v=2")
	if err != nil {
		return err
	}
	if err := e.waitFor(ctx, e.snapshotter, func() bool { return dialable(e.SnapshotterSocket()) }); err != nil {
		return err
	}

	frag, err := snapshotter.RenderContainerd(site, snapshotter.Containerd1)
	if err != nil {
		return err
	}
	cd := e.containerdDir()
	cri := `disabled_plugins = ["io.containerd.grpc.v1.cri"]`
	if e.opts.CRI {
		cri = fmt.Sprintf(`[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q`, filepath.Join(cd, "cni", "bin"), filepath.Join(cd, "cni", "conf"))
	}
	// The rendered fragment (proxy plugin, CRI settings) plus what keeps this containerd private: its own
	// root, state, sockets and plugin directory; CRI off or with private CNI and streaming settings.
	ccfg := strings.Replace(frag, "version = 2\n", fmt.Sprintf(`version = 2
root = %q
state = %q
%s

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(cd, "root"), filepath.Join(cd, "state"), cri, e.ContainerdSocket(), e.ContainerdSocket()+".ttrpc",
		filepath.Join(cd, "debug.sock"), filepath.Join(cd, "opt")), 1)
	ccfgPath := filepath.Join(cd, "config.toml")
	if err := os.WriteFile(ccfgPath, []byte(ccfg), 0o600); err != nil {
		return err
	}
	e.containerd, err = e.spawn("containerd", "containerd", "--config", ccfgPath)
	if err != nil {
		return err
	}
	if err := e.waitFor(ctx, e.containerd, func() bool { return dialable(e.ContainerdSocket()) }); err != nil {
		return err
	}
	e.Client, err = containerd.New(e.ContainerdSocket(), containerd.WithDefaultNamespace(Namespace),
		containerd.WithTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("connecting to containerd: %w", err)
	}
	return nil
}

// stopNode deletes the containers, stops containerd (and its shims) and the snapshotter, and unmounts what is
// left under the scratch directory.
func (e *Env) stopNode() error {
	var errs []error
	if e.Client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, e.deleteContainers(ctx))
		cancel()
		errs = append(errs, e.Client.Close())
		e.Client = nil
	}
	errs = append(errs, e.containerd.stop(), e.killShims())
	e.containerd = nil
	// The snapshotter unmounts its FUSE mounts when it stops (SIGTERM); anything left is its bug, reported,
	// then cleaned up so that nothing stays mounted.
	if e.snapshotter != nil {
		errs = append(errs, e.snapshotter.stop())
		if left, err := daemon.Mounts(e.snapshotterDir()); err != nil || len(left) > 0 {
			errs = append(errs, fmt.Errorf("kubehtc-snapshotter left mounts after SIGTERM: %v %w", left, err))
		}
	}
	e.snapshotter = nil
	errs = append(errs, daemon.UnmountAll(e.Dir))
	return errors.Join(errs...)
}

// Restart stops containerd and the snapshotter, deletes their state (images, content, snapshots, caches) and
// starts them again: the next pull starts from nothing, as on a fresh node.
func (e *Env) Restart(ctx context.Context) error {
	if err := e.stopNode(); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	for _, d := range []string{e.snapshotterDir(), e.containerdDir()} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("removing state: %w", err)
		}
	}
	return e.startNode(ctx)
}

// Close stops everything and removes the scratch directory.
func (e *Env) Close() error {
	var errs []error
	errs = append(errs, e.stopNode())
	if e.proxy != nil {
		errs = append(errs, e.proxy.Close())
	}
	errs = append(errs, e.registry.stop())
	if mounts, err := daemon.Mounts(e.Dir); err != nil || len(mounts) > 0 {
		errs = append(errs, fmt.Errorf("mounts left under %s: %v %w", e.Dir, mounts, err))
	} else {
		errs = append(errs, os.RemoveAll(e.Dir))
	}
	return errors.Join(errs...)
}

// LogTail returns the last lines of a component's log ("registry", "snapshotter", "containerd").
func (e *Env) LogTail(name string, lines int) string {
	data, _ := os.ReadFile(filepath.Join(e.Dir, "logs", name+".log"))
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func (e *Env) spawn(name, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(e.Dir, "logs", name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C of the test does not hit the daemons before Close stops them in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	e.opts.Logf("started %s (pid %d), log %s", name, cmd.Process.Pid, logPath)
	return p, nil
}

// stop sends SIGTERM and waits up to 20 s, then kills.
func (p *process) stop() error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop on SIGTERM within 20 s; killed", p.name)
	}
}

func (e *Env) waitFor(ctx context.Context, p *process, ready func() bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for !ready() {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up; log %s:\n%s", p.name, p.log, e.LogTail(p.name, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60 s; log %s:\n%s", p.name, p.log, e.LogTail(p.name, 20))
		}
	}
	return nil
}

// killShims stops the runc shims of this environment's containerd (they outlive containerd by design). They
// are recognised by the containerd address on their command line, which lies in the scratch directory.
func (e *Env) killShims() error {
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
		if err != nil || !bytes.Contains(cmdline, []byte("containerd-shim")) ||
			!bytes.Contains(cmdline, []byte(e.ContainerdSocket())) {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func dialable(socket string) bool {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
