package session

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/jobs"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// PodLogFunc streams the log of a job's container (client-go's Pods(ns).GetLogs(name, ...).Stream).
type PodLogFunc func(ctx context.Context, namespace, pod string) (io.ReadCloser, error)

// MaxLogBytes bounds the container log copied into a session directory.
const MaxLogBytes = 64 << 20

// Names of the standard output and error in the session directory of a job submitted over gRPC (an ARC
// job's description names its own).
const (
	GRPCStdout = "stdout"
	GRPCStderr = "stderr"
)

// Collector puts the outputs of ended GridJobs into their session directories and cleans what has
// expired. One runs in every gateway that has a session store, whichever front doors it serves.
type Collector struct {
	// Client talks to the API server directly (JSON).
	Client client.WithWatch
	// Site names the VO namespaces to watch.
	Site *config.Site
	// Store holds the session directories.
	Store Store
	// Logs reads a job container's log (PodLogs); nil copies none.
	Logs PodLogFunc
	// Simulation writes the simulated Pod's record instead of reading container logs (see Run).
	Simulation bool
	// SessionLifetime is how long an ended ARC job and its session directory are kept.
	SessionLifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *Collector) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// LogEvent appends a line to a job's "errors" control file (A-REX's job log, diagnose/errors).
func LogEvent(st Store, now time.Time, gj *kubehtcv1alpha1.GridJob, format string, args ...any) {
	line := fmt.Sprintf("%s %s\n", now.UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
	if err := st.Append(KeyOf(gj), AreaControl, "errors", []byte(line)); err != nil {
		klog.Background().V(2).Info("Writing the ARC job log failed", "gridjob", klog.KObj(gj), "err", err)
	}
}

func (c *Collector) logEvent(gj *kubehtcv1alpha1.GridJob, format string, args ...any) {
	LogEvent(c.Store, c.now(), gj, format, args...)
}

// Run runs until ctx ends. It watches the GridJobs of every VO namespace — those of the ARC
// interface and of the gRPC API alike — and, when one ends, puts its outputs into its session directory,
// then marks it collected (until then a finished ARC job reports FINISHING, so that arcget never sees a
// half-filled directory; gRPC ListOutputs reports complete). It also cleans ARC jobs whose session
// lifetime is over, and session directories whose GridJob is gone.
//
// Where outputs come from:
//   - On a real cluster with a shared session volume (translate.PodOptions.SessionClaimName) the job
//     writes its declared outputs into /session itself; the collector copies the container log (logs)
//     into the stdout file and records missing declared outputs in the job's errors log.
//   - With Options.Simulation (the local cluster: KWOK nodes run no container) nothing produced any
//     file. The collector then writes, and clearly labels as simulation, what the Pod's lifecycle
//     showed: the command that would have run, the node, the times, the exit code, and a placeholder for
//     each declared output. Nothing pretends a program ran.
func (c *Collector) Run(ctx context.Context) {
	for _, vo := range c.Site.VOs {
		go c.collectNamespace(ctx, vo.Namespace)
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Expire(ctx)
		}
	}
}

func (c *Collector) collectNamespace(ctx context.Context, ns string) {
	logger := klog.FromContext(ctx).WithValues("namespace", ns)
	for ctx.Err() == nil {
		var list kubehtcv1alpha1.GridJobList
		if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			logger.V(2).Info("Listing grid jobs failed; retrying", "err", err)
			sleep(ctx, 2*time.Second)
			continue
		}
		for i := range list.Items {
			c.Collect(ctx, &list.Items[i])
		}
		var wl kubehtcv1alpha1.GridJobList
		w, err := c.Client.Watch(ctx, &wl, client.InNamespace(ns),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			sleep(ctx, 2*time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			if gj, ok := ev.Object.(*kubehtcv1alpha1.GridJob); ok {
				c.Collect(ctx, gj)
			}
		}
		w.Stop()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Collect collects a job's outputs if it has ended and they are not collected yet, then marks it
// collected.
func (c *Collector) Collect(ctx context.Context, gj *kubehtcv1alpha1.GridJob) {
	if !gj.Status.State.Terminal() || gj.Annotations[kubehtcv1alpha1.OutputsCollectedAnnotation] != "" || gj.DeletionTimestamp != nil {
		return
	}
	logger := klog.FromContext(ctx).WithValues("gridjob", klog.KObj(gj))
	if err := c.collect(ctx, gj); err != nil {
		logger.Error(err, "Collecting ARC job outputs failed")
		return
	}
	patch := client.MergeFrom(gj.DeepCopy())
	if gj.Annotations == nil {
		gj.Annotations = map[string]string{}
	}
	gj.Annotations[kubehtcv1alpha1.OutputsCollectedAnnotation] = c.now().UTC().Format(time.RFC3339)
	if err := c.Client.Patch(ctx, gj, patch); err != nil {
		logger.V(2).Info("Marking outputs collected failed", "err", err)
		return
	}
	logger.V(2).Info("ARC job outputs collected", "state", gj.Status.State)
}

func (c *Collector) collect(ctx context.Context, gj *kubehtcv1alpha1.GridJob) error {
	key := KeyOf(gj)
	logs := c.Logs
	stdout, stderr := gj.Annotations[kubehtcv1alpha1.StdoutAnnotation], gj.Annotations[kubehtcv1alpha1.StderrAnnotation]
	if gj.Labels[kubehtcv1alpha1.InterfaceLabel] != kubehtcv1alpha1.InterfaceARCREST {
		// A job of the gRPC API: its standard output and error go to fixed names (gRPC ListOutputs).
		stdout, stderr = GRPCStdout, GRPCStderr
	}
	put := func(name, text string) error {
		if name == "" {
			return nil
		}
		_, err := c.Store.Put(key, AreaSession, name, strings.NewReader(text), MaxLogBytes)
		return err
	}
	st := gj.Status
	if c.Simulation {
		rec := simulatedRecord(gj)
		if err := put(stdout, rec); err != nil {
			return err
		}
		if stderr != stdout {
			msg := ""
			if st.State != kubehtcv1alpha1.StateFinished {
				msg = fmt.Sprintf("kubehtc simulated run: the job ended %s (%s) %s\n", st.State, st.FailureReason, st.Message)
			}
			if err := put(stderr, msg); err != nil {
				return err
			}
		}
		for _, out := range gj.Spec.Description.Outputs {
			if _, err := c.Store.Stat(key, AreaSession, out); err == nil {
				continue
			}
			text := fmt.Sprintf("kubehtc simulated run: placeholder for the output %q declared by job %s; "+
				"the simulated node ran no container, so no program wrote this file.\n", out, jobs.ID(gj))
			if err := put(out, text); err != nil {
				return err
			}
		}
	} else {
		if stdout != "" && st.PodName != "" && logs != nil {
			if rc, err := logs(ctx, gj.Namespace, st.PodName); err == nil {
				_, err = c.Store.Put(key, AreaSession, stdout, rc, MaxLogBytes)
				rc.Close()
				if err != nil {
					c.logEvent(gj, "copying the container log to %s failed: %v", stdout, err)
				}
			} else {
				c.logEvent(gj, "reading the container log failed: %v", err)
			}
		}
		if stderr != "" && stderr != stdout {
			_ = put(stderr, "the Kubernetes log API merges stderr into stdout: see "+stdout+"\n")
		}
		for _, out := range gj.Spec.Description.Outputs {
			if _, err := c.Store.Stat(key, AreaSession, out); err != nil {
				c.logEvent(gj, "declared output %s is missing from the session directory", out)
			}
		}
	}
	exit := "none"
	if st.ExitCode != nil {
		exit = fmt.Sprint(*st.ExitCode)
	}
	c.logEvent(gj, "job ended %s on node %q, exit code %s %s", st.State, st.Node, exit, st.FailureReason)
	if dir := gj.Annotations[kubehtcv1alpha1.LogDirAnnotation]; dir != "" {
		if f, err := c.Store.Open(key, AreaControl, "errors"); err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(f)
			f.Close()
			_, _ = c.Store.Put(key, AreaSession, dir+"/errors", &b, 1<<20)
		}
	}
	return nil
}

// simulatedRecord is the stdout of a job on a simulated node: what would have run, and how the Pod ended.
func simulatedRecord(gj *kubehtcv1alpha1.GridJob) string {
	st, d := gj.Status, gj.Spec.Description
	var b strings.Builder
	b.WriteString("kubehtc simulated run: the local cluster's nodes are simulated (KWOK) and run no container.\n")
	b.WriteString("This file records what the job's Pod did; on a real cluster it holds the container's output.\n")
	fmt.Fprintf(&b, "job: %s\npod: %s/%s\nnode: %s\nimage: %s\n", jobs.ID(gj), gj.Namespace, st.PodName, st.Node, d.Image)
	fmt.Fprintf(&b, "command: %s\n", strings.TrimSpace(strings.Join(append(append([]string{}, d.Command...), d.Args...), " ")))
	fmt.Fprintf(&b, "cores: %d\nmemory: %d MiB\n", d.Cores, d.MemoryMiB)
	if st.StartTime != nil {
		fmt.Fprintf(&b, "started: %s\n", st.StartTime.UTC().Format(time.RFC3339))
	}
	if st.EndTime != nil {
		fmt.Fprintf(&b, "ended: %s\n", st.EndTime.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "state: %s\n", st.State)
	if st.ExitCode != nil {
		fmt.Fprintf(&b, "exit code: %d\n", *st.ExitCode)
	}
	if st.FailureReason != "" {
		fmt.Fprintf(&b, "reason: %s %s\n", st.FailureReason, st.Message)
	}
	return b.String()
}

// expire cleans ended jobs whose session lifetime is over, and session directories of jobs that no
// longer exist (deleted through another interface, e.g. gRPC Clean). It lists each VO namespace's GridJobs
// once; jobs of the gRPC API keep their files until they are cleaned.
func (c *Collector) Expire(ctx context.Context) {
	stored, err := c.Store.Jobs()
	if err != nil {
		return
	}
	jobs := map[JobKey]*kubehtcv1alpha1.GridJob{}
	listed := map[string]bool{}
	for _, vo := range c.Site.VOs {
		var list kubehtcv1alpha1.GridJobList
		if err := c.Client.List(ctx, &list, client.InNamespace(vo.Namespace)); err != nil {
			continue // unknown: touch nothing of this namespace
		}
		listed[vo.Namespace] = true
		for i := range list.Items {
			jobs[KeyOf(&list.Items[i])] = &list.Items[i]
		}
	}
	c.ExpireDelegations(ctx)
	for _, sj := range stored {
		if !listed[sj.Key.Namespace] {
			continue
		}
		gj, ok := jobs[sj.Key]
		switch {
		case !ok:
			// A directory is written just before its GridJob is created: leave young ones alone.
			if c.now().Sub(sj.Modified) > 10*time.Minute {
				_ = c.Store.RemoveJob(sj.Key)
			}
		case gj.Labels[kubehtcv1alpha1.InterfaceLabel] == kubehtcv1alpha1.InterfaceARCREST && gj.Status.EndTime != nil && c.now().Sub(gj.Status.EndTime.Time) > c.SessionLifetime:
			if err := c.clean(ctx, gj); err == nil {
				klog.FromContext(ctx).V(1).Info("ARC job session lifetime over: cleaned", "gridjob", klog.KObj(gj))
			}
		}
	}
}

// Delegations are removed a day after their proxy expired (it is of no use to any job then), and when
// the client never completed them (no credential) within an hour.
const (
	delegationGrace   = 24 * time.Hour
	delegationPending = time.Hour
)

func (c *Collector) ExpireDelegations(ctx context.Context) {
	for _, vo := range c.Site.VOs {
		var list corev1.SecretList
		if err := c.Client.List(ctx, &list, client.InNamespace(vo.Namespace), client.HasLabels{kubehtcv1alpha1.DelegationLabel}); err != nil {
			continue
		}
		for i := range list.Items {
			sec := &list.Items[i]
			expired := false
			if exp, err := time.Parse(time.RFC3339, sec.Annotations[kubehtcv1alpha1.DelegationExpiresAnnotation]); err == nil {
				expired = c.now().Sub(exp) > delegationGrace
			} else if len(sec.Data[translate.CredentialKey]) == 0 {
				expired = c.now().Sub(sec.CreationTimestamp.Time) > delegationPending
			}
			if !expired {
				continue
			}
			if err := c.Client.Delete(ctx, sec); client.IgnoreNotFound(err) == nil {
				klog.FromContext(ctx).V(1).Info("Removed an expired ARC delegation", "secret", klog.KObj(sec))
			}
		}
	}
}

// clean removes a job: its GridJob (with the Pod and anything it owns) and its session directory.
func (c *Collector) clean(ctx context.Context, gj *kubehtcv1alpha1.GridJob) error {
	if err := (&jobs.Service{Client: c.Client, Site: c.Site}).Clean(ctx, gj); err != nil {
		return err
	}
	return c.Store.RemoveJob(KeyOf(gj))
}

// PodLogs returns a PodLogFunc reading the job container's log through the API server.
func PodLogs(cs kubernetes.Interface) PodLogFunc {
	return func(ctx context.Context, namespace, pod string) (io.ReadCloser, error) {
		limit := int64(MaxLogBytes)
		return cs.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: translate.ContainerName, LimitBytes: &limit}).Stream(ctx)
	}
}
