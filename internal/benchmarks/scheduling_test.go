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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/scheduler"
)

var (
	nodes   = flag.Int("nodes", 1000, "simulated nodes")
	pods    = flag.Int("pods", 10000, "pods per scheduler profile")
	workers = flag.Int("ungate-workers", 32, "parallel clients removing scheduling gates")
)

// benchGate holds the pods back until all of them exist, so that the scheduler, not pod creation, sets the pace.
const benchGate = "bench.kubehtc.io/hold"

// profileResult is one profile's run.
type profileResult struct {
	profile    string
	podsPerSec float64
	ungatePerS float64
	cpuMsPerPd float64
	elapsed    time.Duration
}

// BenchmarkScheduling measures pods/s bound by the default-scheduler profile and by the kubehtc profile, in
// the same process and cluster: M gated pods (1 cpu / 1Gi) are created, then their gate is removed, and the
// clock runs from the first gate removal to the last binding.
func BenchmarkScheduling(b *testing.B) {
	ctx := context.Background()
	c, err := localcluster.Start(ctx, localcluster.Options{NodePools: localcluster.UniformNodePools(*nodes, "32", "256Gi")})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	fmt.Printf("local cluster: %d nodes ready in %s; scheduler client qps=%g burst=%d\n", *nodes, c.StartupDuration.Round(time.Millisecond), c.ClientQPS, c.ClientBurst)
	cs := c.Client()
	b.ResetTimer()
	for range b.N {
		var results []profileResult
		for _, profile := range []string{"default-scheduler", scheduler.ProfileName} {
			r, err := runProfile(ctx, cs, profile, *pods)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Printf("%-17s %d pods bound in %s: %.1f pods/s (gates removed at %.0f/s), %.2f CPU ms/pod\n",
				r.profile, *pods, r.elapsed.Round(time.Millisecond), r.podsPerSec, r.ungatePerS, r.cpuMsPerPd)
			results = append(results, r)
		}
		def, ours := results[0], results[1]
		rssMiB := float64(maxRSSKiB()) / 1024
		b.ReportMetric(def.podsPerSec, "default_pods/s")
		b.ReportMetric(ours.podsPerSec, "kubehtc_pods/s")
		fmt.Printf("peak RSS %.0f MiB; local cluster start-up %s\n", rssMiB, c.StartupDuration.Round(time.Millisecond))
		fmt.Printf("BENCH scheduling nodes=%d pods=%d default_pps=%.1f kubehtc_pps=%.1f ratio=%.3f default_cpu_ms_per_pod=%.2f kubehtc_cpu_ms_per_pod=%.2f peak_rss_mib=%.0f startup_s=%.2f qps=%g burst=%d\n",
			*nodes, *pods, def.podsPerSec, ours.podsPerSec, ours.podsPerSec/def.podsPerSec, def.cpuMsPerPd, ours.cpuMsPerPd, rssMiB,
			c.StartupDuration.Seconds(), c.ClientQPS, c.ClientBurst)
	}
}

func runProfile(ctx context.Context, cs kubernetes.Interface, profile string, n int) (profileResult, error) {
	ns := "bench-" + profile
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return profileResult{}, err
	}
	if err := waitServiceAccount(ctx, cs, ns); err != nil {
		return profileResult{}, err
	}
	if err := parallel(n, *workers, func(i int) error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(ns, i, profile), metav1.CreateOptions{})
		return err
	}); err != nil {
		return profileResult{}, fmt.Errorf("creating pods: %w", err)
	}

	// Count bindings through a watch opened before any gate is removed.
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermNotEqualSelector("spec.nodeName", "").String()})
	if err != nil {
		return profileResult{}, err
	}
	defer w.Stop()
	cpu0 := cpuTime()
	start := time.Now()
	var ungated time.Duration
	ungateErr := make(chan error, 1)
	go func() {
		err := parallel(n, *workers, func(i int) error {
			pod, err := cs.CoreV1().Pods(ns).Get(ctx, podName(i), metav1.GetOptions{})
			if err != nil {
				return err
			}
			pod.Spec.SchedulingGates = nil
			_, err = cs.CoreV1().Pods(ns).Update(ctx, pod, metav1.UpdateOptions{})
			return err
		})
		ungated = time.Since(start)
		ungateErr <- err
	}()
	bound := map[string]bool{}
	timeout := time.After(30 * time.Minute)
	for len(bound) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return profileResult{}, fmt.Errorf("watch closed after %d bindings", len(bound))
			}
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				if p, ok := ev.Object.(*corev1.Pod); ok && p.Spec.NodeName != "" {
					bound[p.Name] = true
				}
			}
		case err := <-ungateErr:
			if err != nil {
				return profileResult{}, fmt.Errorf("removing gates: %w", err)
			}
		case <-timeout:
			return profileResult{}, fmt.Errorf("%s: only %d of %d pods bound after 30 minutes", profile, len(bound), n)
		}
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	<-ungateErr
	if ungated == 0 {
		ungated = elapsed
	}
	r := profileResult{
		profile:    profile,
		elapsed:    elapsed,
		podsPerSec: float64(n) / elapsed.Seconds(),
		ungatePerS: float64(n) / ungated.Seconds(),
		cpuMsPerPd: float64(cpu.Milliseconds()) / float64(n),
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

func podName(i int) string { return fmt.Sprintf("pod-%05d", i) }

func benchPod(ns string, i int, profile string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName(i), Namespace: ns},
		Spec: corev1.PodSpec{
			SchedulerName:                 profile,
			SchedulingGates:               []corev1.PodSchedulingGate{{Name: benchGate}},
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
