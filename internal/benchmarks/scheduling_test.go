package benchmarks

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/scheduler"
)

var (
	nodes   = flag.Int("nodes", 1000, "simulated nodes")
	pods    = flag.Int("pods", 10000, "pods per scheduler profile")
	workers = flag.Int("workers", 32, "parallel clients creating pods and (un)cordoning nodes")
	// fairShare puts the kubehtc profile's pods in a leaf queue (VO weight 50 beside idle siblings of 30 and
	// 20) with ten users, so that ranking, limits and reclaim checks run on every pod.
	fairShare = flag.Bool("fairshare", true, "kubehtc profile's pods in a fair-share queue with ten users")
	// rounds of both profiles, the order alternating (default first, then kubehtc first, ...): a pass runs on a
	// cluster that the previous pass left behind (deleted pods in the watch cache, etcd history, a bigger
	// heap), so a fixed order would charge that drift to the second profile.
	rounds = flag.Int("rounds", 2, "rounds of both profiles, alternating which goes first")
)

// profileResult is one profile's run.
type profileResult struct {
	profile    string
	podsPerSec float64
	uncordon   time.Duration
	timed      int // pods bound after uncordoning
	cpuMsPerPd float64
	cpu        time.Duration // process CPU time while binding
	elapsed    time.Duration
}

// BenchmarkScheduling measures pods/s bound by the default-scheduler profile and by the kubehtc profile, in
// the same process and cluster: M pods (1 cpu / 1Gi) are pre-created while the nodes are cordoned, and the
// clock runs from uncordoning to the last binding.
func BenchmarkScheduling(b *testing.B) {
	ctx := context.Background()
	c, err := localcluster.Start(ctx, localcluster.Options{NodePools: localcluster.UniformNodePools(*nodes, "32", "256Gi")})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	fmt.Printf("local cluster: %d nodes ready in %s; scheduler client qps=%g burst=%d\n", *nodes, c.StartupDuration.Round(time.Millisecond), c.ClientQPS, c.ClientBurst)
	cs := c.Client()
	if *fairShare {
		if err := createBenchQueues(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		total := map[string]*profileResult{}
		for round := range max(*rounds, 1) {
			order := []string{"default-scheduler", scheduler.ProfileName}
			if round%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, profile := range order {
				r, err := runProfile(ctx, cs, profile, round, *pods)
				if err != nil {
					b.Fatal(err)
				}
				fmt.Printf("round %d %-17s %d pods bound in %s: %.1f pods/s (uncordoning took %s; %d bound before it), %.2f CPU ms/pod\n",
					round+1, r.profile, r.timed, r.elapsed.Round(time.Millisecond), r.podsPerSec, r.uncordon.Round(time.Millisecond), *pods-r.timed, r.cpuMsPerPd)
				t := total[profile]
				if t == nil {
					t = &profileResult{profile: profile}
					total[profile] = t
				}
				t.timed += r.timed
				t.elapsed += r.elapsed
				t.cpu += r.cpu
			}
		}
		// Each profile's rate over all its rounds: pods bound / time spent binding them.
		for _, t := range total {
			t.podsPerSec = float64(t.timed) / t.elapsed.Seconds()
			t.cpuMsPerPd = float64(t.cpu.Milliseconds()) / float64(max(t.timed, 1))
		}
		def, ours := total["default-scheduler"], total[scheduler.ProfileName]
		rssMiB := float64(maxRSSKiB()) / 1024
		b.ReportMetric(def.podsPerSec, "default_pods/s")
		b.ReportMetric(ours.podsPerSec, "kubehtc_pods/s")
		fmt.Printf("peak RSS %.0f MiB; local cluster start-up %s\n", rssMiB, c.StartupDuration.Round(time.Millisecond))
		fmt.Printf("BENCH scheduling fairshare=%t nodes=%d pods=%d rounds=%d default_pps=%.1f kubehtc_pps=%.1f ratio=%.3f default_cpu_ms_per_pod=%.2f kubehtc_cpu_ms_per_pod=%.2f peak_rss_mib=%.0f startup_s=%.2f qps=%g burst=%d\n",
			*fairShare, *nodes, *pods, max(*rounds, 1), def.podsPerSec, ours.podsPerSec, ours.podsPerSec/def.podsPerSec, def.cpuMsPerPd, ours.cpuMsPerPd, rssMiB,
			c.StartupDuration.Seconds(), c.ClientQPS, c.ClientBurst)
	}
}

func runProfile(ctx context.Context, cs kubernetes.Interface, profile string, round, n int) (profileResult, error) {
	// One namespace per pass: the previous pass's may still be terminating.
	ns := fmt.Sprintf("bench-%s-%d", profile, round+1)
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if *fairShare && profile == scheduler.ProfileName {
		nsObj.Labels = map[string]string{kubehtcv1alpha1.QueueLabel: "bench-vo"}
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		return profileResult{}, err
	}
	if err := waitServiceAccount(ctx, cs, ns); err != nil {
		return profileResult{}, err
	}
	// Pre-create the pods while every node is cordoned: each pod is tried once, found unschedulable and
	// parked in the scheduler's queue. Uncordoning releases them all at once, so what is timed is the
	// scheduler working through a full queue, not the rate at which a client can create pods.
	nodeList, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return profileResult{}, err
	}
	if err := setUnschedulable(ctx, cs, nodeList.Items, true); err != nil {
		return profileResult{}, fmt.Errorf("cordoning: %w", err)
	}
	time.Sleep(time.Second) // let the scheduler's informer see the cordon; stragglers are handled below
	if err := parallel(n, *workers, func(i int) error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(ns, i, profile), metav1.CreateOptions{})
		return err
	}); err != nil {
		return profileResult{}, fmt.Errorf("creating pods: %w", err)
	}
	// A pod created before the scheduler's cache saw the cordon can still be bound; such pods are not timed.
	preBound := map[string]bool{}
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, nil
		}
		tried := 0
		for i := range l.Items {
			p := &l.Items[i]
			if p.Spec.NodeName != "" {
				preBound[p.Name] = true
				tried++
				continue
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
					tried++
				}
			}
		}
		return tried == n, nil
	}); err != nil {
		return profileResult{}, fmt.Errorf("waiting for every pod to be tried once: %w", err)
	}

	// Count bindings through a watch opened before any node is uncordoned. The apiserver may close a watch
	// that falls behind; then the bound pods are listed and the watch resumes from that list.
	bound := map[string]bool{}
	for name := range preBound {
		bound[name] = true
	}
	boundSel := fields.OneTermNotEqualSelector("spec.nodeName", "").String()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: boundSel})
	if err != nil {
		return profileResult{}, err
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: boundSel, ResourceVersion: list.ResourceVersion})
	if err != nil {
		return profileResult{}, err
	}
	defer func() { w.Stop() }()
	cpu0 := cpuTime()
	start := time.Now()
	if err := setUnschedulable(ctx, cs, nodeList.Items, false); err != nil {
		return profileResult{}, fmt.Errorf("uncordoning: %w", err)
	}
	uncordoned := time.Since(start)
	timeout := time.After(30 * time.Minute)
	for len(bound) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Error {
				if list, err = cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: boundSel}); err != nil {
					return profileResult{}, err
				}
				for i := range list.Items {
					bound[list.Items[i].Name] = true
				}
				w.Stop()
				if w, err = cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: boundSel, ResourceVersion: list.ResourceVersion}); err != nil {
					return profileResult{}, err
				}
				continue
			}
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				if p, ok := ev.Object.(*corev1.Pod); ok && p.Spec.NodeName != "" {
					bound[p.Name] = true
				}
			}
		case <-timeout:
			return profileResult{}, fmt.Errorf("%s: only %d of %d pods bound after 30 minutes", profile, len(bound), n)
		}
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	r := profileResult{
		profile:    profile,
		elapsed:    elapsed,
		timed:      n - len(preBound),
		podsPerSec: float64(n-len(preBound)) / elapsed.Seconds(),
		uncordon:   uncordoned,
		cpuMsPerPd: float64(cpu.Milliseconds()) / float64(max(n-len(preBound), 1)),
		cpu:        cpu,
	}
	// Free the nodes for the next profile.
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		return r, err
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil && len(l.Items) == 0, nil
	})
	return r, err
}

// setUnschedulable cordons or uncordons the nodes, in parallel.
func setUnschedulable(ctx context.Context, cs kubernetes.Interface, nodes []corev1.Node, on bool) error {
	patch := []byte(fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on))
	return parallel(len(nodes), *workers, func(i int) error {
		_, err := cs.CoreV1().Nodes().Patch(ctx, nodes[i].Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

func podName(i int) string { return fmt.Sprintf("pod-%05d", i) }

func benchPod(ns string, i int, profile string) *corev1.Pod {
	var labels map[string]string
	if *fairShare && profile == scheduler.ProfileName {
		labels = map[string]string{kubehtcv1alpha1.UserLabel: fmt.Sprintf("user-%d", i%10)}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName(i), Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			SchedulerName:                 profile,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{
				Name:  "c",
				Image: "busybox",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("1"),
					corev1.ResourceMemory: resource.MustParse("1Gi"),
				}},
			}},
		},
	}
}

// createBenchQueues creates the root Queue and three VOs (50/30/20); the kubehtc profile's namespace joins
// bench-vo.
func createBenchQueues(ctx context.Context, c *localcluster.Cluster) error {
	dc, err := dynamic.NewForConfig(c.JSONRESTConfig())
	if err != nil {
		return err
	}
	queues := dc.Resource(kubehtcv1alpha1.GroupVersion.WithResource("queues"))
	for _, q := range []struct {
		name, parent string
		weight       int64
	}{{"root", "", 1}, {"bench-vo", "root", 50}, {"bench-idle-1", "root", 30}, {"bench-idle-2", "root", 20}} {
		spec := map[string]any{"weight": q.weight}
		if q.parent != "" {
			spec["parent"] = q.parent
		}
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": kubehtcv1alpha1.GroupVersion.String(), "kind": "Queue",
			"metadata": map[string]any{"name": q.name}, "spec": spec,
		}}
		if _, err := queues.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating queue %s: %w", q.name, err)
		}
	}
	return nil
}

func waitServiceAccount(ctx context.Context, cs kubernetes.Interface, ns string) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// parallel runs f(0..n-1) on k workers and returns the first error.
func parallel(n, k int, f func(i int) error) error {
	next := make(chan int)
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// cpuTime is the user+system CPU time of this process so far (the whole control plane runs in it).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxRSSKiB is the peak resident set size of this process (Linux reports KiB).
func maxRSSKiB() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss
}
