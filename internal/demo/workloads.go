package demo

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/scheduler"
)

// ClassLabel is the workload-class label kubehtc's scheduler reads; the demo sets it explicitly.
const ClassLabel = kubehtcv1alpha1.ClassLabel

// demoLabel marks every object the demo creates.
const demoLabel = kubehtcv1alpha1.DemoPartLabel

// Workload is one part of the demo's load.
type Workload interface {
	// Name is shown in the summary.
	Name() string
	// Namespaces the workload uses; the demo creates them first.
	Namespaces() []string
	// Submit creates the workload's objects. It may keep submitting (a stream) until it returns; Run calls
	// it in its own goroutine.
	Submit(ctx context.Context, cs kubernetes.Interface, scale Scale) error
}

// Scale is the size of a demo pass and the scheduler profile its pods use; 1 is the default size.
type Scale struct {
	// Factor multiplies job counts and replica counts.
	Factor float64
	// Runtime multiplies pod runtimes.
	Runtime float64
	// SchedulerName is the profile the pass's pods name (default kubehtc); see ProfileFollower.
	SchedulerName string
}

// ProfileFollower is implemented by workloads whose pods use Scale.SchedulerName. Only they run in the
// comparison pass on the default profile (pods made by a controller of kubehtc's, like the gateway's pilots,
// follow the site's configuration instead).
type ProfileFollower interface {
	FollowsSchedulerName()
}

func (s Scale) n(base int) int {
	v := int(float64(base)*s.Factor + 0.5)
	return max(v, 1)
}

func (s Scale) d(base time.Duration) time.Duration {
	return max(time.Duration(float64(base)*s.Runtime), 100*time.Millisecond)
}

// Workloads is the demo's load, in submission order.
var Workloads = []Workload{webServices{}, batchStream{experiment: "atlas"}, batchStream{experiment: "cms"}, gpuTraining{}, physicsGangs{}}

// webServices are Deployments that run until deleted: they must stay spread and unharmed.
type webServices struct{}

func (webServices) FollowsSchedulerName() {}
func (webServices) Name() string          { return "web services" }
func (webServices) Namespaces() []string  { return []string{"web"} }
func (webServices) Submit(ctx context.Context, cs kubernetes.Interface, s Scale) error {
	for i, name := range []string{"indico", "gitlab", "cernbox"} {
		replicas := int32(s.n(3 + i))
		labels := map[string]string{"app": name, ClassLabel: "service", demoLabel: "web"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "web", Labels: map[string]string{demoLabel: "web"}},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       podSpec(s.SchedulerName, "web", "500m", "1Gi", 0),
				},
			},
		}
		if _, err := cs.AppsV1().Deployments("web").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("deployment %s: %w", name, err)
		}
	}
	return nil
}

// batchStream is one experiment submitting short multi-pod Jobs over a few seconds.
type batchStream struct{ experiment string }

func (batchStream) FollowsSchedulerName()  {}
func (b batchStream) Name() string         { return b.experiment + " batch" }
func (b batchStream) Namespaces() []string { return []string{b.experiment} }
func (b batchStream) Submit(ctx context.Context, cs kubernetes.Interface, s Scale) error {
	jobs := s.n(8)
	// 2 experiments x 8 jobs x 6 pods x 2 cpu in flight: 192 of the CPU pools' 384 cpu, leaving room for
	// the pilots, so that no CPU pod needs a GPU node and the placement comparison is about policy.
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for i := range jobs {
		completions := int32(s.n(20))
		runtime := s.d(time.Duration(3+i%4) * time.Second)
		spec := podSpec(s.SchedulerName, "payload", "2", "4Gi", 0)
		spec.RestartPolicy = corev1.RestartPolicyNever
		j := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-reco-%02d", b.experiment, i), Namespace: b.experiment, Labels: map[string]string{demoLabel: "batch"}},
			Spec: batchv1.JobSpec{
				Completions:  &completions,
				Parallelism:  ptr.To(min(completions, 6)),
				BackoffLimit: ptr.To[int32](3),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{
						Labels:      map[string]string{ClassLabel: "batch", demoLabel: "batch"},
						Annotations: map[string]string{localcluster.RuntimeAnnotation: runtime.String()},
					},
					Spec: spec,
				},
			},
		}
		if _, err := cs.BatchV1().Jobs(b.experiment).Create(ctx, j, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("job %s: %w", j.Name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// gpuTraining is the GPU nodegroup's day: six 1-GPU inference jobs, then an 8-GPU training job. Spread over
// the two GPU nodes, the small jobs leave no node whole and the training waits for them to end; packed, it
// starts at once.
type gpuTraining struct{}

func (gpuTraining) FollowsSchedulerName() {}
func (gpuTraining) Name() string          { return "gpu training" }
func (gpuTraining) Namespaces() []string  { return []string{"ml"} }
func (gpuTraining) Submit(ctx context.Context, cs kubernetes.Interface, s Scale) error {
	job := func(name string, gpus int64, cpu, mem string, runtime time.Duration) error {
		spec := podSpec(s.SchedulerName, "trainer", cpu, mem, gpus)
		spec.RestartPolicy = corev1.RestartPolicyNever
		j := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml", Labels: map[string]string{demoLabel: "gpu"}},
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr.To[int32](0),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{
						Labels:      map[string]string{ClassLabel: "gpu", demoLabel: "gpu"},
						Annotations: map[string]string{localcluster.RuntimeAnnotation: s.d(runtime).String()},
					},
					Spec: spec,
				},
			},
		}
		if _, err := cs.BatchV1().Jobs("ml").Create(ctx, j, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("job %s: %w", j.Name, err)
		}
		return nil
	}
	for i := range 6 {
		if err := job(fmt.Sprintf("inference-%d", i), 1, "4", "32Gi", 15*time.Second); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Second):
	}
	if err := job("train-resnet", 8, "16", "128Gi", 10*time.Second); err != nil {
		return err
	}
	// A Kubeflow-style distributed training: 4 workers x 2 GPUs that must start together.
	return submitGang(ctx, cs, s, gang{ns: "ml", name: "ddp-train", class: "gpu", members: 4, cpu: "8", memory: "64Gi",
		gpus: 2, runtime: 10 * time.Second, timeoutSeconds: 120})
}

// podSpec is a one-container pod for the given scheduler profile (default kubehtc) with the given requests
// (and GPUs as limits).
func podSpec(schedulerName, name, cpu, memory string, gpus int64) corev1.PodSpec {
	if schedulerName == "" {
		schedulerName = scheduler.ProfileName
	}
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
	var lim corev1.ResourceList
	if gpus > 0 {
		lim = corev1.ResourceList{localcluster.GPUResource: *resource.NewQuantity(gpus, resource.DecimalSI)}
		req[localcluster.GPUResource] = *resource.NewQuantity(gpus, resource.DecimalSI)
	}
	return corev1.PodSpec{
		SchedulerName: schedulerName,
		Containers: []corev1.Container{{
			Name:      name,
			Image:     "registry.cern.ch/kubehtc/" + name + ":latest",
			Resources: corev1.ResourceRequirements{Requests: req, Limits: lim},
		}},
		TerminationGracePeriodSeconds: ptr.To[int64](0),
	}
}
