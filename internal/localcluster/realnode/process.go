package realnode

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func (s *Nodes) logPath(name string) string { return filepath.Join(s.Dir, "logs", name+".log") }

// spawn starts bin with its output appended to logPath, in a process group of its own (a Ctrl-C of the
// caller does not reach it before Stop stops it in order).
func spawn(logPath, bin string, args ...string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	name := strings.TrimSuffix(filepath.Base(logPath), ".log")
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM to the process group and waits up to 20 s, then kills it.
func (p *process) stop() error {
	if p == nil {
		return nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop on SIGTERM within 20 s; killed", p.name)
	}
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls ready for up to a minute while p runs.
func waitFor(ctx context.Context, p *process, ready func() bool) error {
	deadline := time.Now().Add(time.Minute)
	for !ready() {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up; log %s:\n%s", p.name, p.log, tail(p.log, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after a minute; log %s:\n%s", p.name, p.log, tail(p.log, 20))
		}
	}
	return nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogTail returns the last lines of a component's log: "<node>-kubelet", "<node>-containerd" or "registry".
func (s *Nodes) LogTail(name string, lines int) string { return tail(s.logPath(name), lines) }

// startRegistry starts Debian's docker-registry (distribution) on a free loopback port, storing under Dir.
func (s *Nodes) startRegistry(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Registry = fmt.Sprintf("127.0.0.1:%d", port)
	dir := filepath.Join(s.Dir, "registry")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
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
`, filepath.Join(dir, "data"), s.Registry)
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	if s.registry, err = spawn(s.logPath("registry"), "docker-registry", "serve", path); err != nil {
		return err
	}
	return waitFor(ctx, s.registry, func() bool {
		resp, err := http.Get("http://" + s.Registry + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
