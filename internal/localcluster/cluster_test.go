package localcluster

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/kubehtc/kubehtc/internal/version"
	"github.com/kubehtc/kubehtc/scheduler"
)

// cluster is the one local cluster of this test binary (see the package doc).
var cluster *Cluster

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// Unit tests only.
		return m.Run()
	}
	baseline := runtime.NumGoroutine()
	var err error
	// A 1 s restart back-off (the kubelet's is 10 s) keeps TestOnFailureRestartsInPlace short.
	cluster, err = Start(context.Background(), Options{RestartBackOff: time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local cluster:", err)
		return 1
	}
	fmt.Printf("local cluster started in %s\n", cluster.StartupDuration)
	code := m.Run()
	if err := checkStop(cluster, baseline); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the local cluster:", err)
		return 1
	}
	return code
}

// leftoverGoroutines is how many goroutines Stop may leave behind: a few loops of KWOK's queues and of
// client-go's event broadcaster do not watch any context (measured: 6 of the ~3,900 a running cluster has).
const leftoverGoroutines = 16

// checkStop stops the cluster and verifies it left nothing behind: its directory is gone, the API port is
// closed, the goroutines are back near the baseline, and a second Stop is a no-op.
func checkStop(c *Cluster, baseline int) error {
	u, err := url.Parse(c.restConfig.Host)
	if err != nil {
		return err
	}
	if err := c.Stop(); err != nil {
		return err
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		return fmt.Errorf("cluster directory %s still exists after Stop (stat: %v)", c.Dir, err)
	}
	if conn, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("apiserver port %s still accepts connections after Stop", u.Host)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return runtime.NumGoroutine() <= baseline+leftoverGoroutines, nil
	}); err != nil {
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		return fmt.Errorf("%d goroutines after Stop, %d before Start (at most %d may remain):\n%s", runtime.NumGoroutine(), baseline, leftoverGoroutines, stacks.String())
	}
	if err := c.Stop(); err != nil {
		return fmt.Errorf("second Stop: %w", err)
	}
	if _, err := Start(context.Background(), Options{}); err != errAlreadyStarted {
		return fmt.Errorf("second Start in one process: got %v, want errAlreadyStarted", err)
	}
	return nil
}

func requireCluster(t *testing.T) kubernetes.Interface {
	t.Helper()
	if cluster == nil {
		t.Skip("integration test: needs the local cluster (not started with -short)")
	}
	return cluster.Client()
}

func newNamespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ctx := context.Background()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The ServiceAccount admission plugin rejects pods until the default ServiceAccount exists.
	poll(t, time.Minute, "default ServiceAccount in "+ns.Name, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}) })
	return ns.Name
}

func poll(t *testing.T, timeout time.Duration, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func podTemplate(runtime string, cpu string) corev1.PodTemplateSpec {
	ann := map[string]string{}
	if runtime != "" {
		ann[RuntimeAnnotation] = runtime
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "t"}, Annotations: ann},
		Spec: corev1.PodSpec{
			SchedulerName:                 scheduler.ProfileName,
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{
				Name: "c", Image: "busybox",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("1Gi")}},
			}},
		},
	}
}

func TestNodesFromDefaultPools(t *testing.T) {
	cs := requireCluster(t)
	nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultNodePools().TotalNodes()
	if len(nodes.Items) != want {
		t.Fatalf("%d nodes, want %d", len(nodes.Items), want)
	}
	gpus := 0
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if !NodeReady(n) {
			t.Errorf("node %s is not Ready", n.Name)
		}
		for _, taint := range n.Spec.Taints {
			t.Errorf("node %s has taint %s (nothing would remove it)", n.Name, taint.Key)
		}
		if q, ok := n.Status.Allocatable[GPUResource]; ok && !q.IsZero() {
			gpus++
		}
	}
	if gpus == 0 {
		t.Errorf("no node advertises %s", GPUResource)
	}
}

func TestJobCompletesAndGarbageCollection(t *testing.T) {
	cs := requireCluster(t)
	ns := newNamespace(t, cs)
	ctx := context.Background()
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "reco", Namespace: ns},
		Spec: batchv1.JobSpec{
			Completions: ptr.To[int32](20),
			Parallelism: ptr.To[int32](5),
			Template:    podTemplate("1s", "1"),
		},
	}
	if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// 20 completions 5 at a time, 1 s each: about 4 s of runtime plus the job controller's batching.
	poll(t, 3*time.Minute, "Job Complete", func(ctx context.Context) (bool, error) {
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, "reco", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return false, fmt.Errorf("job failed: %s", c.Message)
			}
		}
		return j.Status.Succeeded == 20 && hasCondition(j.Status.Conditions, batchv1.JobComplete), nil
	})
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=reco"})
	if err != nil {
		t.Fatal(err)
	}
	succeeded := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded {
			succeeded++
		}
	}
	if succeeded < 20 {
		t.Errorf("%d pods Succeeded, want 20", succeeded)
	}

	// Deleting the Job (background propagation) lets the garbage collector remove its pods.
	if err := cs.BatchV1().Jobs(ns).Delete(ctx, "reco", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the Job's pods to be garbage-collected", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=reco"})
		return err == nil && len(pods.Items) == 0, err
	})
}

func hasCondition(conds []batchv1.JobCondition, typ batchv1.JobConditionType) bool {
	for _, c := range conds {
		if c.Type == typ && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func TestFailingPodReportsExitCode(t *testing.T) {
	cs := requireCluster(t)
	ns := newNamespace(t, cs)
	ctx := context.Background()
	tmpl := podTemplate("500ms", "1")
	tmpl.Annotations[ExitCodeAnnotation] = "3"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fails", Namespace: ns, Annotations: tmpl.Annotations}, Spec: tmpl.Spec}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	poll(t, time.Minute, "pod Failed", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "fails", metav1.GetOptions{})
		got = p
		return err == nil && p.Status.Phase == corev1.PodFailed, err
	})
	if len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].State.Terminated == nil ||
		got.Status.ContainerStatuses[0].State.Terminated.ExitCode != 3 {
		t.Errorf("container statuses %+v, want one terminated with exit code 3", got.Status.ContainerStatuses)
	}
}

// TestOnFailureRestartsInPlace: a Job's OnFailure pod whose container keeps failing is restarted in place by
// its simulated node, with a doubling back-off, until the Job's backoffLimit counts the restarts and fails the
// Job (BackoffLimitExceeded), as on a real cluster.
func TestOnFailureRestartsInPlace(t *testing.T) {
	cs := requireCluster(t)
	ns := newNamespace(t, cs)
	ctx := context.Background()
	tmpl := podTemplate("200ms", "1")
	tmpl.Annotations[ExitCodeAnnotation] = "3"
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "crashy", Namespace: ns},
		Spec:       batchv1.JobSpec{BackoffLimit: ptr.To[int32](3), Template: tmpl},
	}
	if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var (
		maxRestarts int32
		podNames    = map[string]bool{}
		sawFailed   bool
		backoffs    = map[string]bool{}
		final       *batchv1.Job
	)
	poll(t, 2*time.Minute, "Job Failed", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=crashy"})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			podNames[p.Name] = true
			if p.Status.Phase == corev1.PodFailed && p.DeletionTimestamp == nil && p.Status.ContainerStatuses != nil &&
				p.Status.ContainerStatuses[0].State.Terminated != nil && p.Status.ContainerStatuses[0].State.Terminated.Reason == "Error" {
				sawFailed = true // the node failed the pod instead of restarting it
			}
			for _, c := range p.Status.ContainerStatuses {
				maxRestarts = max(maxRestarts, c.RestartCount)
				if w := c.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
					backoffs[strings.Fields(w.Message)[1]] = true
				}
			}
		}
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, "crashy", metav1.GetOptions{})
		final = j
		return err == nil && hasCondition(j.Status.Conditions, batchv1.JobFailed), err
	})
	var reason string
	for _, c := range final.Status.Conditions {
		if c.Type == batchv1.JobFailed {
			reason = c.Reason
		}
	}
	if reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Errorf("Job failed with reason %q, want %s", reason, batchv1.JobReasonBackoffLimitExceeded)
	}
	if len(podNames) != 1 || sawFailed {
		t.Errorf("pods %v (a failed pod seen: %t), want the one pod restarted in place", podNames, sawFailed)
	}
	if maxRestarts < 2 {
		t.Errorf("highest restartCount seen %d, want at least 2 (backoffLimit 3 counts restarts)", maxRestarts)
	}
	// Back-offs 1s, 2s, 4s with the 1 s base; the poll may miss a short one, not the doubling itself.
	if !backoffs["2s"] && !backoffs["4s"] {
		t.Errorf("CrashLoopBackOff back-offs seen %v, want the doubled 2s or 4s among them", backoffs)
	}
}

func TestDeploymentBecomesAvailableAndKeepsRunning(t *testing.T) {
	cs := requireCluster(t)
	ns := newNamespace(t, cs)
	ctx := context.Background()
	tmpl := podTemplate("", "500m")
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyAlways
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](5),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "t"}},
			Template: tmpl,
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "Deployment Available with 5 replicas", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				return d.Status.AvailableReplicas == 5, nil
			}
		}
		return false, nil
	})
	// Pods without a runtime are services: still Running a while later.
	time.Sleep(2 * time.Second)
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=t"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s is %s, want Running", p.Name, p.Status.Phase)
		}
	}
}

func TestOversizedPodStaysPendingWithReason(t *testing.T) {
	cs := requireCluster(t)
	ns := newNamespace(t, cs)
	ctx := context.Background()
	tmpl := podTemplate("1s", "1000") // no node has 1000 CPUs
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "huge", Namespace: ns, Annotations: tmpl.Annotations}, Spec: tmpl.Spec}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var cond corev1.PodCondition
	poll(t, time.Minute, "PodScheduled=False", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "huge", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				cond = c
				return true, nil
			}
		}
		return false, nil
	})
	if cond.Reason != corev1.PodReasonUnschedulable || !strings.Contains(cond.Message, "Insufficient cpu") {
		t.Errorf("PodScheduled condition: reason %q message %q, want Unschedulable / Insufficient cpu", cond.Reason, cond.Message)
	}
	p, err := cs.CoreV1().Pods(ns).Get(ctx, "huge", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending {
		t.Errorf("pod on node %q in phase %s, want unbound and Pending", p.Spec.NodeName, p.Status.Phase)
	}
}

// TestUnservedSchedulerNameGetsEvent: a pod asking for a scheduler no profile serves (Kubeflow's
// --gang-scheduler-name=scheduler-plugins) gets a Warning Event naming the fix instead of silence.
func TestUnservedSchedulerNameGetsEvent(t *testing.T) {
	cs := requireCluster(t)
	ns := newNamespace(t, cs)
	ctx := context.Background()
	tmpl := podTemplate("", "1")
	tmpl.Spec.SchedulerName = "scheduler-plugins"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kubeflow-worker-0", Namespace: ns}, Spec: tmpl.Spec}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var msg string
	poll(t, time.Minute, "the NoSchedulerProfile event", func(ctx context.Context) (bool, error) {
		evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=kubeflow-worker-0,reason=" + ReasonNoSchedulerProfile})
		if err != nil || len(evs.Items) == 0 {
			return false, err
		}
		msg = evs.Items[0].Message
		return evs.Items[0].Type == corev1.EventTypeWarning, nil
	})
	for _, want := range []string{`"scheduler-plugins"`, "default-scheduler, kubehtc", "--gang-scheduler-name=kubehtc"} {
		if !strings.Contains(msg, want) {
			t.Errorf("event message %q does not contain %s", msg, want)
		}
	}
	// A served pod gets no such event.
	served := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "served", Namespace: ns}, Spec: podTemplate("", "1").Spec}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, served, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "pod served Running", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "served", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=served,reason=" + ReasonNoSchedulerProfile})
	if err != nil || len(evs.Items) != 0 {
		t.Errorf("served pod: %d NoSchedulerProfile events (%v), want none", len(evs.Items), err)
	}
}

func TestKubeconfigWorks(t *testing.T) {
	requireCluster(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Errorf("listing nodes through the written kubeconfig: %v", err)
	}
	// This test binary is not stamped (go test has no -ldflags), yet the apiserver reports the Kubernetes
	// version it embeds, one that kubectl and client libraries parse.
	info, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("GET /version: %v", err)
	}
	if _, err := utilversion.ParseSemantic(info.GitVersion); err != nil || info.GitVersion != version.KubernetesRequired {
		t.Errorf("server gitVersion %q (parse error: %v), want %s", info.GitVersion, err, version.KubernetesRequired)
	}
}
