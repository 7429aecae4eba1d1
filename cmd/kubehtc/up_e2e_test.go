package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubehtc/kubehtc/internal/version"
)

// buildBinary builds a Go package into dir, stamped with the versions as `make build` does
// (hack/version.sh), and returns the binary's path.
func buildBinary(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	ldflags, err := exec.Command("../../hack/version.sh").Output()
	if err != nil {
		t.Fatalf("hack/version.sh: %v", err)
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-ldflags", strings.TrimSpace(string(ldflags)), "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// TestUpWithKubectl is what a newcomer does: `kubehtc version`, `kubehtc up`, then kubectl (the same
// Kubernetes version, built from the module) against the printed kubeconfig: version, get nodes, apply a Job,
// wait for it, and Ctrl-C.
func TestUpWithKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds kubectl and starts a cluster")
	}
	bin := t.TempDir()
	kubehtc := buildBinary(t, bin, "kubehtc", ".")
	kubectl := buildBinary(t, bin, "kubectl", "k8s.io/kubernetes/cmd/kubectl")

	// kubehtc version: its own version (git describe) and the Kubernetes one it embeds.
	// Outside a git checkout hack/version.sh stamps "devel".
	describe := []byte("devel")
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		describe = out
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := exec.Command(kubehtc, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubehtc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		for _, want := range []string{strings.TrimSpace(string(describe)), version.KubernetesRequired} {
			if !strings.Contains(string(out), want) {
				t.Errorf("kubehtc %s printed %q, want it to name %s", strings.Join(args, " "), out, want)
			}
		}
	}

	up := exec.Command(kubehtc, "up")
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	up.Stderr = os.Stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Process.Kill(); _ = up.Wait() })

	// Read what `up` prints until it names the kubeconfig and says how to stop.
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	kubeconfigRe := regexp.MustCompile(`export KUBECONFIG=(\S+)`)
	var kubeconfig string
	deadline := time.After(5 * time.Minute)
	for waiting := true; waiting; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("kubehtc up exited before it was ready")
			}
			t.Log("up: " + l)
			if m := kubeconfigRe.FindStringSubmatch(l); m != nil {
				kubeconfig = m[1]
			}
			if strings.Contains(l, "Press Ctrl-C to stop") {
				waiting = false
			}
		case <-deadline:
			t.Fatal("kubehtc up not ready after 5 minutes")
		}
	}
	if kubeconfig == "" {
		t.Fatal("kubehtc up did not print the kubeconfig path")
	}
	// The rest of the output is kept, not logged: the test may be over before `up` prints it.
	var rest strings.Builder
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for l := range lines {
			rest.WriteString(l + "\n")
		}
	}()

	kc := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}

	// kubectl version parses both versions and checks their skew: exit 0, the server on the embedded version.
	if out := kc("version"); !strings.Contains(out, "Server Version: "+version.KubernetesRequired) {
		t.Errorf("kubectl version: want Server Version: %s, got:\n%s", version.KubernetesRequired, out)
	}

	// The upstream gang API is served by default (feature gate GenericWorkload).
	kc("get", "workloads.scheduling.k8s.io,podgroups.scheduling.k8s.io", "-A")

	nodes := kc("get", "nodes", "--no-headers")
	if n := len(strings.Split(strings.TrimSpace(nodes), "\n")); n != 14 || strings.Contains(nodes, "NotReady") {
		t.Errorf("kubectl get nodes: want 14 Ready nodes (default pools), got %d lines:\n%s", n, nodes)
	}

	job := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(job, []byte(`apiVersion: batch/v1
kind: Job
metadata:
  name: hello
spec:
  completions: 3
  parallelism: 3
  template:
    metadata:
      annotations:
        sim.kubehtc.io/runtime: 1s
    spec:
      schedulerName: kubehtc
      restartPolicy: Never
      containers:
      - name: hello
        image: busybox
        resources:
          requests: {cpu: "1", memory: 1Gi}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := kc("apply", "-f", job); !strings.Contains(out, "job.batch/hello created") {
		t.Errorf("kubectl apply: %s", out)
	}
	kc("wait", "--for=condition=complete", "job/hello", "--timeout=150s")
	if out := kc("get", "job", "hello", "-o", "jsonpath={.status.succeeded}"); out != "3" {
		t.Errorf("job hello succeeded=%q, want 3", out)
	}

	// Ctrl-C: `up` stops cleanly and removes its temporary directory.
	if err := up.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		<-drained // all output read (EOF) before Wait, as exec.Cmd.StdoutPipe requires
		done <- up.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("kubehtc up exited with %v after Ctrl-C, want 0; it printed:\n%s", err, rest.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("kubehtc up still running 2 minutes after Ctrl-C")
	}
	if _, err := os.Stat(filepath.Dir(kubeconfig)); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still exists after exit (stat: %v)", filepath.Dir(kubeconfig), err)
	}
}
