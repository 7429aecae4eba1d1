package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
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
	"github.com/kubehtc/kubehtc/scheduler"
	"github.com/kubehtc/kubehtc/scheduler/packspread"
)

// Options of a demo run.
type Options struct {
	// Scale of the workload; zero fields mean 1.
	Scale Scale
	// Timeout bounds the whole run; 0 means 5 minutes.
	Timeout time.Duration
	// Live rewrites one progress line in place (for a terminal); otherwise a line is printed every few seconds.
	Live bool
	// Compare first runs the workloads that follow Scale.SchedulerName on the stock default-scheduler
	// profile, then everything on kubehtc's, and prints both placements side by side.
	Compare bool
}

// ClassCounts are the pods of one workload class by state.
type ClassCounts struct {
	Total, Scheduled, Pending, Running, Succeeded, Failed int
}

// PassSummary is what one pass of the demo (one scheduler profile) reports.
type PassSummary struct {
	// Profile is the scheduler profile the pass's pods used.
	Profile string
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
	// MaxFragmentedGPUs is the most free GPUs seen stranded on nodes that could not host an 8-GPU job
	// (packspread.GPUFragmentation), sampled at every progress tick.
	MaxFragmentedGPUs int64
	// CPUPodsOnGPUNodes counts pods without GPUs that ran on GPU nodes.
	CPUPodsOnGPUNodes int
	// WholeNodeGPUWait is how long the 8-GPU job waited from creation to binding.
	WholeNodeGPUWait time.Duration
	// LongestPartialGang is the longest a gang (PodGroup) was seen with some members on nodes while others
	// still waited, sampled at every progress tick; PartialGangs counts the gangs ever seen so.
	LongestPartialGang time.Duration
	PartialGangs       int
	// Shares is what the VO backlogs received of their node pool inside the measurement window; nil
	// without the pool.
	Shares *ShareSummary
}

// Summary is what the demo reports at the end: the kubehtc pass and, with Options.Compare, the same
// workloads on the default profile.
type Summary struct {
	PassSummary
	Comparison *PassSummary
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

	// Workloads that need the cluster prepared (SharePool tainted) do it once, before the first pass.
	for _, w := range Workloads {
		if p, ok := w.(preparer); ok {
			if err := p.prepare(ctx, cs); err != nil {
				return nil, err
			}
		}
	}

	sum := &Summary{}
	if opts.Compare {
		var followers []Workload
		for _, w := range Workloads {
			if _, ok := w.(ProfileFollower); ok {
				followers = append(followers, w)
			}
		}
		scale := opts.Scale
		scale.SchedulerName = "default-scheduler"
		fmt.Fprintln(out, "Pass 1 of 2, for comparison: the stock default-scheduler profile")
		cmp, err := runPass(ctx, cs, out, followers, scale, opts)
		if err != nil {
			return nil, err
		}
		sum.Comparison = cmp
		if err := cleanUp(ctx, cs, followers); err != nil {
			return nil, err
		}
		fmt.Fprintln(out, "Pass 2 of 2: kubehtc")
	}
	scale := opts.Scale
	scale.SchedulerName = scheduler.ProfileName
	main, err := runPass(ctx, cs, out, Workloads, scale, opts)
	if err != nil {
		return nil, err
	}
	sum.PassSummary = *main
	sum.Print(out)
	return sum, nil
}

// preparer is a workload that prepares the cluster once before the first pass.
type preparer interface {
	prepare(ctx context.Context, cs kubernetes.Interface) error
}

// cleaner is a workload with objects outside its namespaces (cluster-scoped Queues) that cleanUp deletes.
type cleaner interface {
	cleanUp(ctx context.Context, cs kubernetes.Interface) error
}

// maxObserveFailures is how many progress ticks in a row may fail to list the workload's objects.
const maxObserveFailures = 20

// runPass creates the workloads' namespaces, submits them and shows progress until they drain.
func runPass(ctx context.Context, cs kubernetes.Interface, out io.Writer, workloads []Workload, scale Scale, opts Options) (*PassSummary, error) {
	for _, w := range workloads {
		for _, ns := range w.Namespaces() {
			_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("namespace %s: %w", ns, err)
			}
		}
	}
	// The ServiceAccount admission plugin rejects pods until the namespace's default ServiceAccount exists.
	for _, w := range workloads {
		for _, ns := range w.Namespaces() {
			if err := waitDefaultServiceAccount(ctx, cs, ns); err != nil {
				return nil, err
			}
		}
	}
	names := make([]string, len(workloads))
	for i, w := range workloads {
		names[i] = w.Name()
	}
	fmt.Fprintf(out, "Submitting (%s): %s\n", scale.SchedulerName, strings.Join(names, ", "))
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for _, w := range workloads {
		g.Go(func() error { return w.Submit(gctx, cs, scale) })
	}
	submitted := make(chan error, 1)
	go func() { submitted <- g.Wait() }()

	p := &progress{out: out, live: opts.Live}
	shares := newShareMeter(scale)
	var submitDone bool
	var maxFragmented int64
	partialSince := map[string]time.Time{}
	everPartial := map[string]bool{}
	var longestPartial time.Duration
	failures := 0
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-submitted:
			if err != nil {
				p.finish()
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
			// A list can fail transiently (an HTTP/2 stream reset under load); give up only if it keeps failing.
			if failures++; ctx.Err() == nil && failures > maxObserveFailures {
				p.finish()
				return nil, err
			}
			continue
		}
		failures = 0
		shares.observe(time.Since(start), st.pods)
		maxFragmented = max(maxFragmented, st.fragmentation.Fragmented)
		now, partial := time.Now(), map[string]bool{}
		for _, g := range st.partialGangs() {
			partial[g], everPartial[g] = true, true
			if _, ok := partialSince[g]; !ok {
				partialSince[g] = now
			}
		}
		for g, since := range partialSince {
			longestPartial = max(longestPartial, now.Sub(since))
			if !partial[g] {
				delete(partialSince, g)
			}
		}
		p.show(time.Since(start), st, shares.coresNow())
		if submitDone && st.drained() {
			p.finish()
			sum := st.summary(time.Since(start))
			sum.Profile = scale.SchedulerName
			sum.MaxFragmentedGPUs = maxFragmented
			sum.LongestPartialGang, sum.PartialGangs = longestPartial, len(everPartial)
			sum.Shares = shares.summary()
			return sum, nil
		}
	}
}

// cleanUp deletes the workloads' namespaces and waits until they are gone, so the next pass starts on
// empty nodes.
func cleanUp(ctx context.Context, cs kubernetes.Interface, workloads []Workload) error {
	for _, w := range workloads {
		for _, ns := range w.Namespaces() {
			if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("deleting namespace %s: %w", ns, err)
			}
		}
	}
	for _, w := range workloads {
		if c, ok := w.(cleaner); ok {
			if err := c.cleanUp(ctx, cs); err != nil {
				return err
			}
		}
	}
	for _, w := range workloads {
		for _, ns := range w.Namespaces() {
			for {
				_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					break
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("namespace %s not deleted: %w", ns, ctx.Err())
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}
	return nil
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
	nodes                          []corev1.Node
	jobs, jobsComplete, jobsFailed int
	deployments, deploymentsReady  int
	fragmentation                  packspread.Fragmentation
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
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	st := &state{pods: pods.Items, nodes: nodes.Items, jobs: len(jobs.Items), deployments: len(deps.Items)}
	st.fragmentation = packspread.GPUFragmentation(ptrs(st.nodes), ptrs(st.pods), localcluster.GPUResource, 8)
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
		if pod.Labels[demoLabel] == sharePart {
			cls += " (VO backlogs)"
		}
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

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

func (st *state) summary(drain time.Duration) *PassSummary {
	sum := &PassSummary{
		Classes: st.classes(), Jobs: st.jobs, JobsComplete: st.jobsComplete, JobsFailed: st.jobsFailed, Drain: drain,
		NodesUsed: map[string]int{}, NodesTotal: map[string]int{},
	}
	gpuNode, pool := map[string]bool{}, map[string]string{}
	for _, n := range st.nodes {
		pool[n.Name] = n.Labels[localcluster.PoolLabel]
		sum.NodesTotal[pool[n.Name]]++
		q := n.Status.Allocatable[localcluster.GPUResource]
		gpuNode[n.Name] = q.Value() > 0
	}
	used := map[string]bool{}
	for i := range st.pods {
		p := &st.pods[i]
		if p.Spec.NodeName == "" {
			continue
		}
		if !used[p.Spec.NodeName] {
			used[p.Spec.NodeName] = true
			sum.NodesUsed[pool[p.Spec.NodeName]]++
		}
		gpus := p.Spec.Containers[0].Resources.Requests[localcluster.GPUResource]
		if gpus.Value() == 0 && gpuNode[p.Spec.NodeName] {
			sum.CPUPodsOnGPUNodes++
		}
		if gpus.Value() == 8 {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
					sum.WholeNodeGPUWait = max(sum.WholeNodeGPUWait, c.LastTransitionTime.Sub(p.CreationTimestamp.Time))
				}
			}
		}
	}
	return sum
}

// Print writes the summary as tables: pods of the kubehtc pass by class, then placement per profile.
func (s *Summary) Print(out io.Writer) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "CLASS (%s)\tPODS\tSCHEDULED\tPENDING\tRUNNING\tSUCCEEDED\tFAILED\t\n", s.Profile)
	for _, cls := range slices.Sorted(maps.Keys(s.Classes)) {
		c := s.Classes[cls]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", cls, c.Total, c.Scheduled, c.Pending, c.Running, c.Succeeded, c.Failed)
	}
	tw.Flush()
	fmt.Fprintln(out)
	passes := []*PassSummary{&s.PassSummary}
	if s.Comparison != nil {
		passes = []*PassSummary{s.Comparison, &s.PassSummary}
	}
	header := "PLACEMENT"
	for _, p := range passes {
		header += "\t" + p.Profile
	}
	fmt.Fprintln(tw, header+"\t")
	for _, pool := range slices.Sorted(maps.Keys(s.NodesTotal)) {
		row := fmt.Sprintf("nodes used, pool %s (of %d)", pool, s.NodesTotal[pool])
		for _, p := range passes {
			row += fmt.Sprintf("\t%d", p.NodesUsed[pool])
		}
		fmt.Fprintln(tw, row+"\t")
	}
	rows := []struct {
		name string
		f    func(p *PassSummary) string
	}{
		{"CPU-only pods on GPU nodes", func(p *PassSummary) string { return fmt.Sprint(p.CPUPodsOnGPUNodes) }},
		{"GPUs fragmented (max; free, no 8-GPU fit)", func(p *PassSummary) string { return fmt.Sprint(p.MaxFragmentedGPUs) }},
		{"8-GPU job waited", func(p *PassSummary) string { return p.WholeNodeGPUWait.Round(time.Second).String() }},
		{"gangs seen partly placed (longest)", func(p *PassSummary) string {
			return fmt.Sprintf("%d (%s)", p.PartialGangs, p.LongestPartialGang.Round(100*time.Millisecond))
		}},
		{"time to drain", func(p *PassSummary) string { return p.Drain.Round(100 * time.Millisecond).String() }},
		{"jobs complete / failed / submitted", func(p *PassSummary) string {
			return fmt.Sprintf("%d / %d / %d", p.JobsComplete, p.JobsFailed, p.Jobs)
		}},
	}
	if s.Shares != nil {
		rows = append(rows, []struct {
			name string
			f    func(p *PassSummary) string
		}{
			{fmt.Sprintf("VO share delivered, %s-%s (target %s)", s.Shares.From.Round(time.Second), s.Shares.To.Round(time.Second), s.Shares.percentages(s.Shares.Target)),
				func(p *PassSummary) string {
					if p.Shares == nil {
						return "-"
					}
					return p.Shares.percentages(p.Shares.Delivered)
				}},
			{"max share deviation (pts)", func(p *PassSummary) string {
				if p.Shares == nil {
					return "-"
				}
				return fmt.Sprintf("%.1f", p.Shares.MaxDeviation())
			}},
		}...)
	}
	for _, r := range rows {
		row := r.name
		for _, p := range passes {
			row += "\t" + r.f(p)
		}
		fmt.Fprintln(tw, row+"\t")
	}
	tw.Flush()
}

// progress prints one status line per observation: in place on a terminal, every few seconds otherwise.
type progress struct {
	out       io.Writer
	live      bool
	lastPrint time.Time
	width     int
}

func (p *progress) show(elapsed time.Duration, st *state, voCores string) {
	var scheduled, pending, succeeded, failed int
	for _, c := range st.classes() {
		scheduled += c.Scheduled
		pending += c.Pending
		succeeded += c.Succeeded
		failed += c.Failed
	}
	line := fmt.Sprintf("[%5.1fs] pods: %d scheduled, %d pending, %d succeeded, %d failed | jobs %d/%d done | deployments %d/%d available",
		elapsed.Seconds(), scheduled, pending, succeeded, failed, st.jobsComplete+st.jobsFailed, st.jobs, st.deploymentsReady, st.deployments)
	if voCores != "" {
		line += " | VO cores " + voCores
	}
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
