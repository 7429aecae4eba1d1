package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	"github.com/kubehtc/kubehtc/internal/localcluster"
)

// gang is a multi-pod job whose members must start together: a PodGroup (scheduling.x-k8s.io/v1alpha1, as
// Kubeflow's training operator creates it) and an indexed Job whose pods carry the pod-group label.
type gang struct {
	ns, name, class string
	members         int32
	cpu, memory     string
	gpus            int64
	runtime         time.Duration
	timeoutSeconds  int32
}

// submitGang creates the gang's PodGroup, then its Job.
func submitGang(ctx context.Context, cs kubernetes.Interface, s Scale, g gang) error {
	pg := schedv1alpha1.PodGroup{
		TypeMeta:   metav1.TypeMeta{APIVersion: schedv1alpha1.SchemeGroupVersion.String(), Kind: "PodGroup"},
		ObjectMeta: metav1.ObjectMeta{Name: g.name, Namespace: g.ns, Labels: map[string]string{demoLabel: g.class}},
		Spec:       schedv1alpha1.PodGroupSpec{MinMember: g.members, ScheduleTimeoutSeconds: ptr.To(g.timeoutSeconds)},
	}
	body, err := json.Marshal(pg)
	if err != nil {
		return err
	}
	// The typed clientset has no PodGroup client: post the object to its REST path.
	err = cs.CoreV1().RESTClient().Post().AbsPath("/apis", schedv1alpha1.SchemeGroupVersion.Group, schedv1alpha1.SchemeGroupVersion.Version,
		"namespaces", g.ns, "podgroups").SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()
	if err != nil {
		return fmt.Errorf("PodGroup %s/%s: %w", g.ns, g.name, err)
	}
	spec := podSpec(s.SchedulerName, "worker", g.cpu, g.memory, g.gpus)
	spec.RestartPolicy = corev1.RestartPolicyNever
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: g.name, Namespace: g.ns, Labels: map[string]string{demoLabel: g.class}},
		Spec: batchv1.JobSpec{
			Completions:    ptr.To(g.members),
			Parallelism:    ptr.To(g.members),
			CompletionMode: ptr.To(batchv1.IndexedCompletion),
			BackoffLimit:   ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      map[string]string{ClassLabel: g.class, demoLabel: g.class, schedv1alpha1.PodGroupLabel: g.name},
					Annotations: map[string]string{localcluster.RuntimeAnnotation: s.d(g.runtime).String()},
				},
				Spec: spec,
			},
		},
	}
	if _, err := cs.BatchV1().Jobs(g.ns).Create(ctx, j, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("job %s: %w", j.Name, err)
	}
	return nil
}

// physicsGangs are multi-node MPI-style physics jobs (LHCb-like): gangs of 24 2-cpu ranks that compete with the
// batch streams for the CPU pools, submitted every few seconds.
type physicsGangs struct{}

func (physicsGangs) FollowsSchedulerName() {}
func (physicsGangs) Name() string          { return "mpi gangs" }
func (physicsGangs) Namespaces() []string  { return []string{"lhcb"} }
func (physicsGangs) Submit(ctx context.Context, cs kubernetes.Interface, s Scale) error {
	for i := range s.n(4) {
		g := gang{ns: "lhcb", name: fmt.Sprintf("mpi-sim-%d", i), class: "batch", members: 24, cpu: "2", memory: "4Gi",
			runtime: 8 * time.Second, timeoutSeconds: 60}
		if err := submitGang(ctx, cs, s, g); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
	return nil
}

// partialGangs counts the gangs that have some, but not all, of their pods on nodes, and not yet finished:
// members holding resources while others wait.
func (st *state) partialGangs() []string {
	bound, total := map[string]int{}, map[string]int{}
	for i := range st.pods {
		p := &st.pods[i]
		g := p.Labels[schedv1alpha1.PodGroupLabel]
		if g == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		key := p.Namespace + "/" + g
		total[key]++
		if p.Spec.NodeName != "" {
			bound[key]++
		}
	}
	var out []string
	for g, n := range total {
		if b := bound[g]; b > 0 && b < n {
			out = append(out, g)
		}
	}
	return out
}
