package gang_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	config "github.com/kubehtc/kubehtc/apis/config/v1alpha1"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/scheduler/backfill"
	"github.com/kubehtc/kubehtc/scheduler/gang/gangtest"
)

// The Backfill plugin's tests live in this package's binary (same local cluster: 2 GPU nodes of 8 GPUs), so
// that no new Kubernetes-linking test binary is needed.

// gpuPod is a 1-GPU pod outside any gang that runs for runtime; walltime 0 declares none.
func gpuPod(ns, name string, runtime, walltime time.Duration) *v1.Pod {
	p := gangtest.Spec{Namespace: ns, Name: name, Size: 1, CPU: "1", GPUs: 1, Runtime: runtime}.Pod(0)
	p.Name = name
	delete(p.Labels, "scheduling.x-k8s.io/pod-group")
	if walltime > 0 {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[config.WalltimeAnnotation] = walltime.String()
	}
	return p
}

// reservedEvent returns the message of the newest Reserved Event on the object named name ("" if none).
func reservedEvent(ctx context.Context, cs kubernetes.Interface, ns, name string) (string, time.Time) {
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=" + backfill.EventReasonReserved})
	if err != nil || len(evs.Items) == 0 {
		return "", time.Time{}
	}
	last := evs.Items[0]
	for _, e := range evs.Items[1:] {
		if eventTime(e).After(eventTime(last)) {
			last = e
		}
	}
	return last.Message, eventTime(last)
}

func eventTime(e v1.Event) time.Time {
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.LastTimestamp.Time
}

// A stream of 1-GPU pods keeps both GPU nodes busy; a 2 × 8-GPU gang arrives. Without a reservation it never
// finds 16 GPUs free at once. With one it starts no later than the longest walltime (60 s) plus slack after
// its arrival; short pods (10 s walltime) still run on the reserved nodes before the start (backfill), while
// pods that would run past the start — 60 s walltime, or none declared — are kept off them.
func TestBackfillGangStartsWithinLongestWalltime(t *testing.T) {
	t.Skip("Backfill is not enabled in the kubehtc profile: with it on, TestCompetingGangsNeverDeadlock stalled (1 of 2 CI runs); re-enable with the plugin (issue 24)")
	cs, dyn := clients(t)
	ns := "backfill-gang"
	clustertest.Namespace(t, cs, ns)
	rec := gangtest.Record(cs, ns)
	defer rec.Stop()
	ctx := context.Background()
	const walltime = 60 * time.Second
	// Fill the 16 GPUs with pods that end over the next 20–56 s (each declares 60 s).
	for i := range 16 {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, gpuPod(ns, fmt.Sprintf("fill-%d", i), 20*time.Second+time.Duration(i)*2400*time.Millisecond, walltime), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	clustertest.Poll(t, time.Minute, func(context.Context) (bool, error) {
		return gangtest.Count(rec.Events(), "", "bind") == 16, nil
	})
	s := gangtest.Spec{Namespace: ns, Name: "wide", Size: 2, CPU: "8", GPUs: 8, Runtime: 5 * time.Second}
	if err := gangtest.Create(ctx, cs, dyn, s, -1); err != nil {
		t.Fatal(err)
	}
	arrived := time.Now()
	// The feeder keeps three pods of each kind pending until the gang has started: short (10 s walltime,
	// runs 8 s), long (60 s walltime, runs 50 s) and undeclared (no walltime, runs 8 s).
	kinds := map[string]struct{ runtime, walltime time.Duration }{
		"short": {8 * time.Second, 10 * time.Second},
		"long":  {50 * time.Second, walltime},
		"nowt":  {8 * time.Second, 0},
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		created := map[string]int{}
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			pending := map[string]int{}
			bound := map[string]bool{}
			for _, e := range rec.Events() {
				if e.Kind == "bind" {
					bound[e.Pod] = true
				}
			}
			for kind, n := range created {
				for i := range n {
					if !bound[fmt.Sprintf("%s-%d", kind, i)] {
						pending[kind]++
					}
				}
			}
			for kind, k := range kinds {
				for ; pending[kind] < 3; pending[kind]++ {
					name := fmt.Sprintf("%s-%d", kind, created[kind])
					created[kind]++
					if _, err := cs.CoreV1().Pods(ns).Create(ctx, gpuPod(ns, name, k.runtime, k.walltime), metav1.CreateOptions{}); err != nil {
						t.Errorf("creating %s: %v", name, err)
						return
					}
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	// The reservation is visible on the PodGroup: both GPU nodes, from a time within the walltime.
	var msg string
	var reservedAt time.Time
	clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
		msg, reservedAt = reservedEvent(ctx, cs, ns, "wide")
		return msg != "", nil
	})
	if !strings.HasPrefix(msg, "reserved nodes ") {
		t.Errorf("Reserved event %q does not name the nodes", msg)
	}
	clustertest.Poll(t, 3*time.Minute, func(context.Context) (bool, error) {
		return gangtest.Count(rec.Events(), "wide", "bind") == 2, nil
	})
	var started time.Time
	for _, e := range rec.Events() {
		if e.Gang == "wide" && e.Kind == "bind" {
			started = e.At
		}
	}
	// The longest walltime of a pod running at the gang's arrival is 60 s; 20 s slack for the watch, the
	// scheduler's backoff and the kubelet stand-in's status updates.
	if wait := started.Sub(arrived); wait > walltime+20*time.Second {
		t.Errorf("the gang started %s after its arrival, want at most %s + 20s", wait.Round(time.Second), walltime)
	}
	// Between the reservation (plus 2 s for events already in flight) and the start, GPU pods bound are all
	// short ones: backfill, never a pod running past the start.
	backfilled := 0
	for _, e := range rec.Events() {
		if e.Kind != "bind" || e.Gang != "" || e.At.Before(reservedAt.Add(2*time.Second)) || !e.At.Before(started) {
			continue
		}
		switch kind, _, _ := strings.Cut(e.Pod, "-"); kind {
		case "short":
			backfilled++
		case "long", "nowt":
			t.Errorf("%s (would run past the reserved start) bound on %s after the reservation", e.Pod, e.Node)
		}
	}
	if backfilled == 0 {
		t.Errorf("no short pod ran on the reserved nodes before the gang started (reservation %q at %s, start %s)",
			msg, reservedAt.Format(time.TimeOnly), started.Format(time.TimeOnly))
	}
	t.Logf("gang waited %s; %d short pods backfilled; %s", started.Sub(arrived).Round(time.Second), backfilled, msg)
}

// An 8-GPU pod (big, not a gang) waits for a whole GPU node; its reservation names one node. When that node
// is deleted, the reservation moves to the other one, and the pod starts there.
func TestBackfillReservationMovesWhenNodeDeleted(t *testing.T) {
	t.Skip("Backfill is not enabled in the kubehtc profile: with it on, TestCompetingGangsNeverDeadlock stalled (1 of 2 CI runs); re-enable with the plugin (issue 24)")
	cs, _ := clients(t)
	ns := "backfill-node"
	clustertest.Namespace(t, cs, ns)
	rec := gangtest.Record(cs, ns)
	defer rec.Stop()
	ctx := context.Background()
	// gpu node 1 ends its pods at 15 s, the other at 40 s: the reservation goes to the earlier one.
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "nvidia.com/gpu.product"})
	if err != nil || len(nodes.Items) != 2 {
		t.Fatalf("want 2 GPU nodes, got %d (%v)", len(nodes.Items), err)
	}
	for i, n := range nodes.Items {
		runtime := 40 * time.Second
		if i == 0 {
			runtime = 15 * time.Second
		}
		for j := range 8 {
			p := gpuPod(ns, fmt.Sprintf("fill-%d-%d", i, j), runtime, runtime)
			p.Spec.NodeName = n.Name // bound directly: the test decides which node ends first
			if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	big := gpuPod(ns, "big", 5*time.Second, 10*time.Second)
	setGPUs(big, 8)
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, big, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var msg string
	clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
		msg, _ = reservedEvent(ctx, cs, ns, "big")
		return msg != "", nil
	})
	first := nodes.Items[0]
	if !strings.Contains(msg, first.Name) {
		t.Fatalf("reservation %q, want node %s (its pods end first)", msg, first.Name)
	}
	// Delete the reserved node (it comes back at the end, for the other tests of this binary).
	if err := cs.CoreV1().Nodes().Delete(ctx, first.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n := first.DeepCopy()
		n.ResourceVersion, n.UID = "", ""
		created, err := cs.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{})
		if err != nil {
			t.Errorf("re-creating node %s: %v", n.Name, err)
			return
		}
		// Create may drop the status; the GPU capacity must come back for the other tests.
		created.Status = first.Status
		if _, err := cs.CoreV1().Nodes().UpdateStatus(context.Background(), created, metav1.UpdateOptions{}); err != nil {
			t.Errorf("restoring the status of node %s: %v", n.Name, err)
		}
	})
	second := nodes.Items[1].Name
	clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
		msg, _ = reservedEvent(ctx, cs, ns, "big")
		return strings.Contains(msg, second), nil
	})
	clustertest.Poll(t, 2*time.Minute, func(context.Context) (bool, error) {
		for _, e := range rec.Events() {
			if e.Pod == "big" && e.Kind == "bind" {
				if e.Node != second {
					return false, fmt.Errorf("big bound to %s, want %s", e.Node, second)
				}
				return true, nil
			}
		}
		return false, nil
	})
}

func setGPUs(p *v1.Pod, n int64) {
	c := &p.Spec.Containers[0]
	q := *resource.NewQuantity(n, resource.DecimalSI)
	c.Resources.Requests["nvidia.com/gpu"] = q
	c.Resources.Limits["nvidia.com/gpu"] = q
}
