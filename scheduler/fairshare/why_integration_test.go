package fairshare_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/internal/why"
	"github.com/kubehtc/kubehtc/scheduler"
)

// TestWhy asks `kubehtc why` (internal/why) about three waiting pods on this package's cluster (40 cores, the
// quota controller): one whose queue uses more than its fair share, a gang member whose gang is incomplete,
// and a pod no node can hold. Each answer must name the cause a person would look for.
func TestWhy(t *testing.T) {
	clustertest.Require(t, cluster)
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(cluster.JSONRESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	clients := why.Clients{Kube: cluster.Client(), Dynamic: dyn}
	ask := func(kind, ns, name string, done func(*why.Answer) bool) *why.Answer {
		t.Helper()
		var a *why.Answer
		clustertest.Poll(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
			var err error
			a, err = why.Explain(ctx, clients, kind, ns, name)
			return err == nil && done(a), err
		})
		var text bytes.Buffer
		a.WriteText(&text, time.Now())
		t.Logf("kubehtc why %s %s/%s:\n%s", kind, ns, name, text.String())
		return a
	}

	// Fair-share wait: queue wy-a (weight 1 of 2) takes all 40 cores while wy-b is idle, then 5 more wait.
	queues(t, map[string]int32{"wy-a": 1, "wy-b": 1})
	namespace(t, "wy-a", "wy-a")
	submit(t, "wy-a", "a", "", 45, 0)
	clustertest.Poll(t, 2*time.Minute, func(context.Context) (bool, error) { return running(t, false, "wy-a")["wy-a"] == 40, nil })
	pods, err := cluster.Client().CoreV1().Pods("wy-a").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName="})
	if err != nil || len(pods.Items) != 5 {
		t.Fatalf("listing the pending pods of wy-a: %d pods, %v; want 5", len(pods.Items), err)
	}
	a := ask("pod", "wy-a", pods.Items[0].Name, func(a *why.Answer) bool {
		return a.Waiting && a.SchedulerReason != "" && a.Queue != nil && a.Queue.OverTarget && a.Queue.PendingHere == 5
	})
	if a.Queue.Name != "wy-a" || a.Queue.Position < 1 || a.Queue.Position > 5 || a.Queue.Rank == 0 {
		t.Errorf("queue answer %+v, want queue wy-a ranked, the pod among its 5 pending", *a.Queue)
	}
	var text bytes.Buffer
	a.WriteText(&text, time.Now())
	if !strings.Contains(text.String(), "uses more than its fair share") {
		t.Errorf("text answer does not say the queue is over its share:\n%s", text.String())
	}

	// Gang waiting: a PodGroup of 3 with 2 members.
	namespace(t, "wy-g", "")
	pg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": schedv1alpha1.SchemeGroupVersion.String(), "kind": "PodGroup",
		"metadata": map[string]any{"name": "train", "namespace": "wy-g"},
		"spec":     map[string]any{"minMember": int64(3)},
	}}
	if _, err := dyn.Resource(schedv1alpha1.SchemeGroupVersion.WithResource("podgroups")).Namespace("wy-g").Create(ctx, pg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"train-0", "train-1"} {
		createPod(t, "wy-g", name, "1", map[string]string{schedv1alpha1.PodGroupLabel: "train"})
	}
	g := ask("podgroup", "wy-g", "train", func(a *why.Answer) bool { return a.Gang != nil && a.Gang.Members == 2 })
	if !g.Waiting || g.Gang.MinMember != 3 || g.Gang.Bound != 0 {
		t.Errorf("gang answer %+v (waiting %t), want 2 of 3 members, none bound", *g.Gang, g.Waiting)
	}
	text.Reset()
	g.WriteText(&text, time.Now())
	if !strings.Contains(text.String(), "has 2 of the 3 pods it needs") {
		t.Errorf("text answer does not say the gang is incomplete:\n%s", text.String())
	}

	// Unfit: 1000 cores, outside any queue.
	createPod(t, "wy-g", "huge", "1000", nil)
	u := ask("pod", "wy-g", "huge", func(a *why.Answer) bool { return a.SchedulerReason != "" })
	if u.Queue != nil || u.Gang != nil || !strings.Contains(u.SchedulerReason, "Insufficient cpu") {
		t.Errorf("unfit answer: queue %v gang %v reason %q, want no queue, no gang, Insufficient cpu", u.Queue, u.Gang, u.SchedulerReason)
	}
}

func createPod(t *testing.T, ns, name, cpu string, labels map[string]string) {
	t.Helper()
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: v1.PodSpec{
			SchedulerName: scheduler.ProfileName,
			Containers: []v1.Container{{Name: "c", Image: "busybox", Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("1Gi")}}}},
		},
	}
	if _, err := cluster.Client().CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
