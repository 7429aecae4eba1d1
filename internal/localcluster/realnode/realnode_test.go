package realnode_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/realnode"
)

// cluster is this test binary's local cluster with one real node; nil when the host cannot run one (skip
// says why).
var (
	cluster *localcluster.Cluster
	skip    string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	if err := realnode.Check(); err != nil {
		skip = "this host cannot run a real node: " + err.Error()
		return m.Run()
	}
	var err error
	cluster, err = localcluster.Start(context.Background(), localcluster.Options{RealNodes: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local cluster with a real node:", err)
		return 1
	}
	fmt.Printf("local cluster with a real node started in %s\n", cluster.StartupDuration)
	code := m.Run()
	rn := cluster.RealNodes()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the local cluster:", err)
		return 1
	}
	if left, err := rn.Leftovers(); err != nil || len(left) > 0 {
		fmt.Fprintf(os.Stderr, "the real node left behind after Stop: %v %v\n", left, err)
		return 1
	}
	return code
}

func needCluster(t *testing.T) (kubernetes.Interface, *realnode.Nodes) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the local cluster")
	}
	if skip != "" {
		t.Skip(skip)
	}
	return cluster.Client(), cluster.RealNodes()
}

// realPod is a pod for the real node running sh -c script in the busybox image.
func realPod(name, image, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeSelector:  map[string]string{realnode.KindLabel: realnode.KindReal},
			Containers: []corev1.Container{{
				Name: "main", Image: image, Command: []string{"sh", "-c", script},
			}},
		},
	}
}

func waitPodDone(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		pod, err = cs.CoreV1().Pods(metav1.NamespaceDefault).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed, nil
	})
	if err != nil {
		t.Fatalf("pod %s did not finish: %v; status %+v\nkubelet log:\n%s", name, err, pod.Status,
			cluster.RealNodes().LogTail(cluster.RealNodes().Nodes[0].Name+"-kubelet", 30))
	}
	return pod
}

func logs(ctx context.Context, t *testing.T, cs kubernetes.Interface, pod string) string {
	t.Helper()
	out, err := cs.CoreV1().Pods(metav1.NamespaceDefault).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs of %s: %v", pod, err)
	}
	return string(out)
}

// TestRealNodeRegistered: the real node is Ready, labelled as real, and not adopted by KWOK (which would
// annotate it and take over its status).
func TestRealNodeRegistered(t *testing.T) {
	cs, rn := needCluster(t)
	node, err := cs.CoreV1().Nodes().Get(t.Context(), rn.Nodes[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !localcluster.NodeReady(node) {
		t.Errorf("node %s is not Ready: %+v", node.Name, node.Status.Conditions)
	}
	if got := node.Labels[realnode.KindLabel]; got != realnode.KindReal {
		t.Errorf("node %s label %s = %q, want %q", node.Name, realnode.KindLabel, got, realnode.KindReal)
	}
	for k := range node.Annotations {
		if strings.HasPrefix(k, "kwok.x-k8s.io/") {
			t.Errorf("node %s carries KWOK annotation %s", node.Name, k)
		}
	}
	if got := node.Status.NodeInfo.ContainerRuntimeVersion; !strings.HasPrefix(got, "containerd://") {
		t.Errorf("container runtime %q, want containerd", got)
	}
}

// TestJobOnRealNode: a Job of 3 pods runs sh -c in real containers on the real node and completes; each
// pod's log holds what its shell printed (its own hostname, from a real UTS namespace).
func TestJobOnRealNode(t *testing.T) {
	cs, rn := needCluster(t)
	ctx := t.Context()
	// $$$$ is the shell's $$ after Kubernetes' own $$ escaping: 1, the shell is its PID namespace's init.
	tmpl := realPod("", rn.BusyboxImage, `echo "hello from $(cat /etc/hostname) pid $$$$"`)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "real-job", Namespace: metav1.NamespaceDefault},
		Spec: batchv1.JobSpec{
			Parallelism:  ptr.To[int32](3),
			Completions:  ptr.To[int32](3),
			BackoffLimit: ptr.To[int32](0),
			Template:     corev1.PodTemplateSpec{Spec: tmpl.Spec},
		},
	}
	if _, err := cs.BatchV1().Jobs(metav1.NamespaceDefault).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := cs.BatchV1().Jobs(metav1.NamespaceDefault).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return false, fmt.Errorf("job failed: %s", c.Message)
			}
		}
		return j.Status.Succeeded == 3, nil
	})
	if err != nil {
		t.Fatalf("job: %v\nkubelet log:\n%s", err, rn.LogTail(rn.Nodes[0].Name+"-kubelet", 30))
	}
	pods, err := cs.CoreV1().Pods(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 3 {
		t.Fatalf("job has %d pods, want 3", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != rn.Nodes[0].Name {
			t.Errorf("pod %s ran on %q, want the real node %s", p.Name, p.Spec.NodeName, rn.Nodes[0].Name)
		}
		want := "hello from " + p.Name + " pid 1\n"
		if got := logs(ctx, t, cs, p.Name); got != want {
			t.Errorf("logs of %s = %q, want %q", p.Name, got, want)
		}
	}
}

// TestFailingContainerExitCode: a container that exits 7 ends the pod Failed with exit code 7, and its log
// holds what it printed first (stdout and stderr).
func TestFailingContainerExitCode(t *testing.T) {
	cs, rn := needCluster(t)
	ctx := t.Context()
	pod := realPod("real-fail", rn.BusyboxImage, "echo going; echo down >&2; exit 7")
	if _, err := cs.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitPodDone(ctx, t, cs, pod.Name)
	if got.Status.Phase != corev1.PodFailed {
		t.Errorf("phase %s, want Failed", got.Status.Phase)
	}
	if len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("container status %+v, want terminated", got.Status.ContainerStatuses)
	}
	if code := got.Status.ContainerStatuses[0].State.Terminated.ExitCode; code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	// stdout ("going") and stderr ("down") are two streams: the log has both lines, in either order.
	if l := logs(ctx, t, cs, pod.Name); l != "going\ndown\n" && l != "down\ngoing\n" {
		t.Errorf("logs %q, want the lines %q and %q", l, "going", "down")
	}
}

// TestStopLeavesNothing starts a second real node, runs a pod on it (sandbox, veth, network namespace,
// overlay and service-account mounts, pod cgroups), stops it and asserts that no mount, network device,
// network namespace or cgroup it made is left.
func TestStopLeavesNothing(t *testing.T) {
	cs, _ := needCluster(t)
	ctx := t.Context()
	rn, err := realnode.Start(ctx, realnode.Options{Dir: filepath.Join(cluster.Dir, "realnodes-stoptest"),
		Kubeconfig: cluster.Kubeconfig, Count: 1, NamePrefix: "kubehtc-stoptest-"})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = rn.Stop()
		}
	}()
	n := rn.Nodes[0]
	pod := realPod("real-stoptest", rn.BusyboxImage, "echo up; sleep 3600")
	pod.Spec.NodeSelector = map[string]string{corev1.LabelHostname: n.Name}
	if _, err := cs.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(metav1.NamespaceDefault).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	if err != nil {
		t.Fatalf("pod not Running: %v\nkubelet log:\n%s", err, rn.LogTail(n.Name+"-kubelet", 30))
	}
	// While it runs, the node has made things to clean up; the assertion below is only meaningful if so.
	during, err := rn.Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"network device " + n.Bridge, "network namespace ", "mount ", "cgroup "} {
		if !containsPrefix(during, want) {
			t.Errorf("while a pod runs, expected something starting %q among what the node made: %v", want, during)
		}
	}
	stopped = true
	if err := rn.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	left, err := rn.Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left behind after Stop: %v", left)
	}
	if _, err := os.Stat(rn.Dir); !os.IsNotExist(err) {
		t.Errorf("directory %s still exists after Stop (stat: %v)", rn.Dir, err)
	}
	_ = cs.CoreV1().Pods(metav1.NamespaceDefault).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	_ = cs.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
