package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubehtc/kubehtc/internal/localcluster"
)

// Options of a demo run.
type Options struct {
	// Scale of the workload; zero fields mean 1.
	Scale Scale
	// Timeout bounds the whole run; 0 means 5 minutes.
	Timeout time.Duration
	// Live rewrites one progress line in place (for a terminal); otherwise a line is printed every few seconds.
	Live bool
}

// ClassCounts are the pods of one workload class by state.
type ClassCounts struct {
	Total, Scheduled, Pending, Running, Succeeded, Failed int
}

// Summary is what the demo reports at the end.
type Summary struct {
	// Classes maps a workload class (the kubehtc.io/class label) to its pod counts.
	Classes map[string]ClassCounts
	// NodesUsed maps a node pool to the number of its nodes that ran at least one demo pod.
	NodesUsed map[string]int
	// NodesTotal maps a node pool to its node count.
	NodesTotal map[string]int
	// JobsComplete and JobsFailed count finished Jobs; Jobs is how many were submitted.
	Jobs, JobsComplete, JobsFailed int
	// Drain is the time from the first submission until every Job finished and every Deployment was available.
	Drain time.Duration
}

// Run submits Workloads to the cluster, shows progress on out until the load has drained, and prints the
// summary table.
func Run(ctx context.Context, cs kubernetes.Interface, out io.Writer, opts Options) (*Summary, error) {
	if opts.Scale.Factor == 0 {
		opts.Scale.Factor = 1
	}
	if opts.Scale.Runtime == 0 {
		opts.Scale.Runtime = 1
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	for _, w := range Workloads {
		for _, ns := range w.Namespaces() {
			_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("namespace %s: %w", ns, err)
			}
		}
	}
	// The ServiceAccount admission plugin rejects pods until the namespace's default ServiceAccount exists.
	for _, w := range Workloads {
		for _, ns := range w.Namespaces() {
			if err := waitDefaultServiceAccount(ctx, cs, ns); err != nil {
				return nil, err
			}
		}
	}

	names := make([]string, len(Workloads))
	for i, w := range Workloads {
		names[i] = w.Name()
	}
	fmt.Fprintf(out, "Submitting: %s\n", strings.Join(names, ", "))
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for _, w := range Workloads {
		g.Go(func() error { return w.Submit(gctx, cs, opts.Scale) })
	}
	submitted := make(chan error, 1)
	go func() { submitted <- g.Wait() }()

	p := &progress{out: out, live: opts.Live}
	var submitDone bool
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-submitted:
			if err != nil {
				return nil, fmt.Errorf("submitting the workload: %w", err)
			}
			submitDone = true
		case <-ctx.Done():
			p.finish()
			return nil, fmt.Errorf("the workload did not drain within %s: %w", opts.Timeout, ctx.Err())
		case <-tick.C:
		}
		st, err := observe(ctx, cs)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return nil, err
		}
		p.show(time.Since(start), st)
		if submitDone && st.drained() {
			p.finish()
			sum := st.summary(time.Since(start))
			if err := sum.fill(ctx, cs); err != nil {
				return nil, err
			}
			sum.Print(out)
			return sum, nil
		}
	}
}

func waitDefaultServiceAccount(ctx context.Context, cs kubernetes.Interface, ns string) error {
	for {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s has no default ServiceAccount: %w", ns, errors.Join(err, ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// state is one observation of the demo's objects.
type state struct {
	pods                           []corev1.Pod
	jobs, jobsComplete, jobsFailed int
	deployments, deploymentsReady  int
}

func observe(ctx context.Context, cs kubernetes.Interface) (*state, error) {
	sel := metav1.ListOptions{LabelSelector: demoLabel, ResourceVersion: "0"}
	pods, err := cs.CoreV1().Pods("").List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	jobs, err := cs.BatchV1().Jobs("").List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	deps, err := cs.AppsV1().Deployments("").List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}
	st := &state{pods: pods.Items, jobs: len(jobs.Items), deployments: len(deps.Items)}
	for i := range jobs.Items {
		switch jobFinished(&jobs.Items[i]) {
		case batchv1.JobComplete:
			st.jobsComplete++
		case batchv1.JobFailed:
			st.jobsFailed++
		}
	}
	for _, d := range deps.Items {
		if d.Spec.Replicas != nil && d.Status.AvailableReplicas == *d.Spec.Replicas {
			st.deploymentsReady++
		}
	}
	return st, nil
}

func jobFinished(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

func (st *state) drained() bool {
	return st.jobs > 0 && st.jobsComplete+st.jobsFailed == st.jobs && st.deploymentsReady == st.deployments
}

func (st *state) classes() map[string]ClassCounts {
	out := map[string]ClassCounts{}
	for i := range st.pods {
		pod := &st.pods[i]
		cls := pod.Labels[ClassLabel]
		c := out[cls]
		c.Total++
		if pod.Spec.NodeName != "" {
			c.Scheduled++
		} else {
			c.Pending++
		}
		switch pod.Status.Phase {
		case corev1.PodRunning:
			c.Running++
		case corev1.PodSucceeded:
			c.Succeeded++
		case corev1.PodFailed:
			c.Failed++
		}
		out[cls] = c
	}
	return out
}

func (st *state) summary(drain time.Duration) *Summary {
	return &Summary{Classes: st.classes(), Jobs: st.jobs, JobsComplete: st.jobsComplete, JobsFailed: st.jobsFailed, Drain: drain}
}

// fill adds node usage per pool.
func (s *Summary) fill(ctx context.Context, cs kubernetes.Interface) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: demoLabel, ResourceVersion: "0"})
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	used := map[string]bool{}
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" {
			used[p.Spec.NodeName] = true
		}
	}
	s.NodesUsed, s.NodesTotal = map[string]int{}, map[string]int{}
	for _, n := range nodes.Items {
		pool := n.Labels[localcluster.PoolLabel]
		s.NodesTotal[pool]++
		if used[n.Name] {
			s.NodesUsed[pool]++
		}
	}
	return nil
}

// Print writes the summary as tables.
func (s *Summary) Print(out io.Writer) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tPODS\tSCHEDULED\tPENDING\tRUNNING\tSUCCEEDED\tFAILED\t")
	for _, cls := range sortedKeys(s.Classes) {
		c := s.Classes[cls]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", cls, c.Total, c.Scheduled, c.Pending, c.Running, c.Succeeded, c.Failed)
	}
	tw.Flush()
	fmt.Fprintln(out)
	fmt.Fprintln(tw, "POOL\tNODES USED\tNODES\t")
	for _, pool := range sortedKeys(s.NodesTotal) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", pool, s.NodesUsed[pool], s.NodesTotal[pool])
	}
	tw.Flush()
	fmt.Fprintf(out, "\nJobs: %d submitted, %d complete, %d failed. Time to drain: %s\n", s.Jobs, s.JobsComplete, s.JobsFailed, s.Drain.Round(100*time.Millisecond))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// progress prints one status line per observation: in place on a terminal, every few seconds otherwise.
type progress struct {
	out       io.Writer
	live      bool
	lastPrint time.Time
	width     int
}

func (p *progress) show(elapsed time.Duration, st *state) {
	var scheduled, pending, succeeded, failed int
	for _, c := range st.classes() {
		scheduled += c.Scheduled
		pending += c.Pending
		succeeded += c.Succeeded
		failed += c.Failed
	}
	line := fmt.Sprintf("[%5.1fs] pods: %d scheduled, %d pending, %d succeeded, %d failed | jobs %d/%d done | deployments %d/%d available",
		elapsed.Seconds(), scheduled, pending, succeeded, failed, st.jobsComplete+st.jobsFailed, st.jobs, st.deploymentsReady, st.deployments)
	if p.live {
		pad := max(p.width-len(line), 0)
		fmt.Fprintf(p.out, "\r%s%s", line, strings.Repeat(" ", pad))
		p.width = len(line)
		return
	}
	if time.Since(p.lastPrint) >= 2*time.Second {
		fmt.Fprintln(p.out, line)
		p.lastPrint = time.Now()
	}
}

func (p *progress) finish() {
	if p.live && p.width > 0 {
		fmt.Fprintln(p.out)
	}
}

// IsTerminal reports whether f is a character device (a terminal), for Options.Live.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
