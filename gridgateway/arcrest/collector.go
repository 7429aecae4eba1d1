package arcrest

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

// RunCollector runs until ctx ends. It watches the GridJobs of every VO namespace — those of the ARC
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
func (s *Server) RunCollector(ctx context.Context, logs PodLogFunc) {
	for _, vo := range s.opts.Site.VOs {
		go s.collectNamespace(ctx, vo.Namespace, logs)
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.expire(ctx)
		}
	}
}

func (s *Server) collectNamespace(ctx context.Context, ns string, logs PodLogFunc) {
	logger := klog.FromContext(ctx).WithValues("namespace", ns)
	for ctx.Err() == nil {
		var list kubehtcv1alpha1.GridJobList
		if err := s.opts.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			logger.V(2).Info("Listing grid jobs failed; retrying", "err", err)
			sleep(ctx, 2*time.Second)
			continue
		}
		for i := range list.Items {
			s.maybeCollect(ctx, &list.Items[i], logs)
		}
		var wl kubehtcv1alpha1.GridJobList
		w, err := s.opts.Client.Watch(ctx, &wl, client.InNamespace(ns),
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
				s.maybeCollect(ctx, gj, logs)
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

// maybeCollect collects a job's outputs once it has ended.
func (s *Server) maybeCollect(ctx context.Context, gj *kubehtcv1alpha1.GridJob, logs PodLogFunc) {
	if !gj.Status.State.Terminal() || gj.Annotations[CollectedAnnotation] != "" || gj.DeletionTimestamp != nil {
		return
	}
	logger := klog.FromContext(ctx).WithValues("gridjob", klog.KObj(gj))
	if err := s.collect(ctx, gj, logs); err != nil {
		logger.Error(err, "Collecting ARC job outputs failed")
		return
	}
	patch := client.MergeFrom(gj.DeepCopy())
	if gj.Annotations == nil {
		gj.Annotations = map[string]string{}
	}
	gj.Annotations[CollectedAnnotation] = s.now().UTC().Format(time.RFC3339)
	if err := s.opts.Client.Patch(ctx, gj, patch); err != nil {
		logger.V(2).Info("Marking outputs collected failed", "err", err)
		return
	}
	logger.V(2).Info("ARC job outputs collected", "state", gj.Status.State)
}

func (s *Server) collect(ctx context.Context, gj *kubehtcv1alpha1.GridJob, logs PodLogFunc) error {
	key := keyOf(gj)
	stdout, stderr := gj.Annotations[StdoutAnnotation], gj.Annotations[StderrAnnotation]
	if gj.Labels[InterfaceLabel] != InterfaceValue {
		// A job of the gRPC API: its standard output and error go to fixed names (gRPC ListOutputs).
		stdout, stderr = GRPCStdout, GRPCStderr
	}
	put := func(name, text string) error {
		if name == "" {
			return nil
		}
		_, err := s.opts.Store.Put(key, AreaSession, name, strings.NewReader(text), MaxLogBytes)
		return err
	}
	st := gj.Status
	if s.opts.Simulation {
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
			if _, err := s.opts.Store.Stat(key, AreaSession, out); err == nil {
				continue
			}
			text := fmt.Sprintf("kubehtc simulated run: placeholder for the output %q declared by job %s; "+
				"the simulated node ran no container, so no program wrote this file.\n", out, jobID(gj))
			if err := put(out, text); err != nil {
				return err
			}
		}
	} else {
		if stdout != "" && st.PodName != "" && logs != nil {
			if rc, err := logs(ctx, gj.Namespace, st.PodName); err == nil {
				_, err = s.opts.Store.Put(key, AreaSession, stdout, rc, MaxLogBytes)
				rc.Close()
				if err != nil {
					s.logEvent(gj, "copying the container log to %s failed: %v", stdout, err)
				}
			} else {
				s.logEvent(gj, "reading the container log failed: %v", err)
			}
		}
		if stderr != "" && stderr != stdout {
			_ = put(stderr, "the Kubernetes log API merges stderr into stdout: see "+stdout+"\n")
		}
		for _, out := range gj.Spec.Description.Outputs {
			if _, err := s.opts.Store.Stat(key, AreaSession, out); err != nil {
				s.logEvent(gj, "declared output %s is missing from the session directory", out)
			}
		}
	}
	exit := "none"
	if st.ExitCode != nil {
		exit = fmt.Sprint(*st.ExitCode)
	}
	s.logEvent(gj, "job ended %s on node %q, exit code %s %s", st.State, st.Node, exit, st.FailureReason)
	if dir := gj.Annotations[LogDirAnnotation]; dir != "" {
		if f, err := s.opts.Store.Open(key, AreaControl, "errors"); err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(f)
			f.Close()
			_, _ = s.opts.Store.Put(key, AreaSession, dir+"/errors", &b, 1<<20)
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
	fmt.Fprintf(&b, "job: %s\npod: %s/%s\nnode: %s\nimage: %s\n", jobID(gj), gj.Namespace, st.PodName, st.Node, d.Image)
	fmt.Fprintf(&b, "command: %s\n", strings.TrimSpace(strings.Join(append(append([]string{}, d.Command...), d.Args...), " ")))
	fmt.Fprintf(&b, "cores: %d\nmemory: %d MiB\n", d.Cores, d.MemoryMiB)
	if st.StartTime != nil {
		fmt.Fprintf(&b, "started: %s\n", glueTime(st.StartTime.Time))
	}
	if st.EndTime != nil {
		fmt.Fprintf(&b, "ended: %s\n", glueTime(st.EndTime.Time))
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
func (s *Server) expire(ctx context.Context) {
	stored, err := s.opts.Store.Jobs()
	if err != nil {
		return
	}
	jobs := map[JobKey]*kubehtcv1alpha1.GridJob{}
	listed := map[string]bool{}
	for _, vo := range s.opts.Site.VOs {
		var list kubehtcv1alpha1.GridJobList
		if err := s.opts.Client.List(ctx, &list, client.InNamespace(vo.Namespace)); err != nil {
			continue // unknown: touch nothing of this namespace
		}
		listed[vo.Namespace] = true
		for i := range list.Items {
			jobs[keyOf(&list.Items[i])] = &list.Items[i]
		}
	}
	s.expireDelegations(ctx)
	for _, sj := range stored {
		if !listed[sj.Key.Namespace] {
			continue
		}
		gj, ok := jobs[sj.Key]
		switch {
		case !ok:
			// A directory is written just before its GridJob is created: leave young ones alone.
			if s.now().Sub(sj.Modified) > 10*time.Minute {
				_ = s.opts.Store.RemoveJob(sj.Key)
			}
		case gj.Labels[InterfaceLabel] == InterfaceValue && gj.Status.EndTime != nil && s.now().Sub(gj.Status.EndTime.Time) > s.opts.SessionLifetime:
			if err := s.cleanJob(ctx, gj); err == nil {
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

func (s *Server) expireDelegations(ctx context.Context) {
	for _, vo := range s.opts.Site.VOs {
		var list corev1.SecretList
		if err := s.opts.Client.List(ctx, &list, client.InNamespace(vo.Namespace), client.HasLabels{DelegationLabel}); err != nil {
			continue
		}
		for i := range list.Items {
			sec := &list.Items[i]
			expired := false
			if exp, err := time.Parse(time.RFC3339, sec.Annotations[DelegationExpiresAnnotation]); err == nil {
				expired = s.now().Sub(exp) > delegationGrace
			} else if len(sec.Data[translate.CredentialKey]) == 0 {
				expired = s.now().Sub(sec.CreationTimestamp.Time) > delegationPending
			}
			if !expired {
				continue
			}
			if err := s.opts.Client.Delete(ctx, sec); client.IgnoreNotFound(err) == nil {
				klog.FromContext(ctx).V(1).Info("Removed an expired ARC delegation", "secret", klog.KObj(sec))
			}
		}
	}
}

// PodLogs returns a PodLogFunc reading the job container's log through the API server.
func PodLogs(cs kubernetes.Interface) PodLogFunc {
	return func(ctx context.Context, namespace, pod string) (io.ReadCloser, error) {
		limit := int64(MaxLogBytes)
		return cs.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: translate.ContainerName, LimitBytes: &limit}).Stream(ctx)
	}
}
