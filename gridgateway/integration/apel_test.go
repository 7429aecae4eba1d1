package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/apel"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
	"github.com/kubehtc/kubehtc/internal/localcluster"
)

// startAccountant runs the APEL accountant in its own manager (as kubehtc-controller does) until stop.
func startAccountant(t *testing.T, opts apel.Options) (a *apel.Accountant, stop func()) {
	t.Helper()
	// A restart in the same process: the controller's name is registered again.
	mgr, err := ctrl.NewManager(cluster.JSONRESTConfig(), ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		t.Fatal(err)
	}
	a = &apel.Accountant{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Options: opts}
	if err := a.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("accountant manager: %v", err)
		}
	}()
	return a, func() { cancel(); <-done }
}

// batchPod is a plain Pod bound to node directly (no fair-share Queue exists in this test cluster for the
// scheduler to admit it into); node "" leaves it to a scheduler and pending.
func batchPod(ns, name, runtime, cpu, node string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{kubehtcv1alpha1.UserLabel: "alice"}},
		Spec: corev1.PodSpec{
			SchedulerName: "kubehtc", RestartPolicy: corev1.RestartPolicyNever, NodeName: node,
			Containers: []corev1.Container{{Name: "main", Image: "busybox", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("100Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("100Mi")}}}},
		},
	}
	if runtime != "" {
		p.Annotations = map[string]string{localcluster.RuntimeAnnotation: runtime}
	}
	return p
}

// TestAPELAccountsEachJobOnceAcrossRestarts runs the accountant over finished GridJobs and batch Pods,
// stops it, lets more jobs end, leaves a stale staged record and a running Pod deleted meanwhile, restarts
// it and checks that the outgoing queue holds exactly one record per job that ran, with the right fields.
func TestAPELAccountsEachJobOnceAcrossRestarts(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	gridNS, batchNS, otherNS := "apel-grid", "apel-batch", "apel-none"
	for _, ns := range []string{gridNS, batchNS, otherNS} {
		namespace(t, ns)
	}
	var nsObj corev1.Namespace
	if err := kc.Get(ctx, client.ObjectKey{Name: batchNS}, &nsObj); err != nil {
		t.Fatal(err)
	}
	nsObj.Labels = map[string]string{kubehtcv1alpha1.QueueLabel: "batch-q"}
	if err := kc.Update(ctx, &nsObj); err != nil {
		t.Fatal(err)
	}
	// Nodes carry their benchmark; every other node has none and gets the default.
	var nodes corev1.NodeList
	if err := kc.List(ctx, &nodes); err != nil {
		t.Fatal(err)
	}
	bench := map[string]float64{}
	for i, n := range nodes.Items {
		bench[n.Name] = 10 // the default below
		if i%2 == 0 {
			n.Labels[apel.BenchmarkLabel] = "17.5"
			bench[n.Name] = 17.5
			if err := kc.Update(ctx, &n); err != nil {
				t.Fatal(err)
			}
		}
	}
	batchNode := nodes.Items[len(nodes.Items)-1].Name
	dir := t.TempDir()
	opts := apel.Options{Dir: dir, Site: "KUBEHTC-TEST", SubmitHost: "ce.example.org:443/kubehtc", DefaultBenchmark: 10,
		FlushInterval: 300 * time.Millisecond}

	run := func(d string) kubehtcv1alpha1.EnvVar {
		return kubehtcv1alpha1.EnvVar{Name: translate.SimRuntimeEnv, Value: d}
	}
	accounted := func(ns, name string) {
		t.Helper()
		poll(t, 2*time.Minute, ns+"/"+name+" accounted", func(ctx context.Context) (bool, error) {
			var p corev1.Pod
			if err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			return p.Annotations[apel.AccountedAnnotation] != "", nil
		})
	}

	_, stop := startAccountant(t, opts)
	g1 := gridJob(gridNS, "g1", run("2s"))
	g1.Spec.Owner = kubehtcv1alpha1.GridJobOwner{DN: "/DC=ch/DC=cern/OU=Users/CN=atlpilo1"}
	g1.Spec.Description.Cores = 4
	g1.Annotations = map[string]string{apel.FQANAnnotation: "/apel-grid/Role=pilot/Capability=NULL"}
	g2 := gridJob(gridNS, "g2", run("1s"), kubehtcv1alpha1.EnvVar{Name: translate.SimExitCodeEnv, Value: "3"})
	long := gridJob(gridNS, "long") // runs until deleted
	for _, gj := range []*kubehtcv1alpha1.GridJob{g1, g2, long} {
		if err := kc.Create(ctx, gj); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*corev1.Pod{batchPod(batchNS, "b1", "2s", "2", batchNode), batchPod(otherNS, "o1", "1s", "1", batchNode),
		batchPod(batchNS, "unschedulable", "", "100000", "")} {
		if err := kc.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, gridNS, "g1", kubehtcv1alpha1.StateFinished)
	waitState(t, gridNS, "g2", kubehtcv1alpha1.StateFailed)
	waitState(t, gridNS, "long", kubehtcv1alpha1.StateRunning)
	accounted(gridNS, "g1")
	accounted(gridNS, "g2")
	accounted(batchNS, "b1")
	poll(t, time.Minute, "the running pod to carry the finalizer", func(ctx context.Context) (bool, error) {
		var p corev1.Pod
		err := kc.Get(ctx, client.ObjectKey{Namespace: gridNS, Name: "long"}, &p)
		return err == nil && slices.Contains(p.Finalizers, apel.Finalizer), client.IgnoreNotFound(err)
	})
	stop()

	// While the accountant is down: another job and batch pod end; the running pod is deleted (the
	// finalizer keeps it); a record of b2 is staged but its pod never marked (a crash between the two).
	g3 := gridJob(gridNS, "g3", run("1s"))
	if err := kc.Create(ctx, g3); err != nil {
		t.Fatal(err)
	}
	b2 := batchPod(batchNS, "b2", "1s", "1", batchNode)
	if err := kc.Create(ctx, b2); err != nil {
		t.Fatal(err)
	}
	waitState(t, gridNS, "g3", kubehtcv1alpha1.StateFinished)
	poll(t, time.Minute, "b2 to succeed", func(ctx context.Context) (bool, error) {
		err := kc.Get(ctx, client.ObjectKeyFromObject(b2), b2)
		return err == nil && b2.Status.Phase == corev1.PodSucceeded, err
	})
	stale := apel.Record{Site: opts.Site, LocalJobID: batchNS + "/b2", WallDuration: 999999, StartTime: 1, EndTime: 1000000}
	sp, err := apel.NewSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Stage(apel.StageKey(b2), stale); err != nil {
		t.Fatal(err)
	}
	var longPod corev1.Pod
	if err := kc.Get(ctx, client.ObjectKey{Namespace: gridNS, Name: "long"}, &longPod); err != nil {
		t.Fatal(err)
	}
	if err := kc.Delete(ctx, &longPod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // would the pod go without the finalizer? (it must not)
	if err := kc.Get(ctx, client.ObjectKeyFromObject(&longPod), &longPod); err != nil {
		t.Fatalf("the deleted running pod went before it was accounted: %v", err)
	}
	// A cleaned job whose record went out before the restart.
	if err := kc.Delete(ctx, g1); err != nil {
		t.Fatal(err)
	}
	if err := kc.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: batchNS, Name: "unschedulable"}}); err != nil {
		t.Fatal(err)
	}

	a, stop := startAccountant(t, opts)
	defer stop()
	accounted(gridNS, "g3")
	accounted(batchNS, "b2")
	poll(t, time.Minute, "the deleted running pod to be accounted and go", func(ctx context.Context) (bool, error) {
		err := kc.Get(ctx, client.ObjectKeyFromObject(&longPod), &corev1.Pod{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	want := []string{gridNS + ".g1", gridNS + ".g2", gridNS + ".g3", gridNS + ".long", batchNS + "/b1", batchNS + "/b2"}
	// Records leave staging through a batch directory before their message appears in the outgoing queue:
	// wait for what ssmsend would see, every job's message, not for staging to be empty.
	var byID map[string][]apel.Record
	poll(t, time.Minute, "every job's record in an outgoing message", func(ctx context.Context) (bool, error) {
		keys, err := a.Spool().Staged()
		if err != nil || len(keys) > 0 {
			return false, err
		}
		msgs, err := a.Spool().OutgoingMessages()
		if err != nil {
			return false, err
		}
		byID = map[string][]apel.Record{}
		for _, m := range msgs {
			data, err := os.ReadFile(m)
			if err != nil {
				return false, err
			}
			if !bytes.HasPrefix(data, []byte(apel.IndividualHeader+"\n")) {
				t.Errorf("message %s does not start with the APEL header:\n%s", m, data)
			}
			recs, err := apel.ParseRecords(bytes.NewReader(data))
			if err != nil {
				return false, err
			}
			for _, r := range recs {
				byID[r.LocalJobID] = append(byID[r.LocalJobID], r)
			}
		}
		for _, id := range want {
			if len(byID[id]) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	for _, id := range want {
		if n := len(byID[id]); n != 1 {
			t.Errorf("job %s has %d records, want exactly 1", id, n)
		}
	}
	if len(byID) != len(want) {
		t.Errorf("records for %d jobs, want %d (nothing for the other namespace or the pod that never ran): %v", len(byID), len(want), keys(byID))
	}

	r := byID[gridNS+".g1"][0]
	if r.GlobalUserName != g1.Spec.Owner.DN || r.FQAN != g1.Annotations[apel.FQANAnnotation] || r.VO != gridNS ||
		r.Processors != 4 || r.InfrastructureType != "grid" || r.Site != opts.Site || r.SubmitHost != opts.SubmitHost ||
		r.MachineName != "ce.example.org" || r.Queue != gridNS+"-prod" || r.ServiceLevelType != apel.ServiceLevelHEPscore23 {
		t.Errorf("g1 record %+v", r)
	}
	// Simulated runtime 2 s: wall 2 s (±1 for rounding of the two timestamps), CPU = wall × 4 cores (estimated).
	if r.WallDuration < 1 || r.WallDuration > 4 || r.CPUDuration != r.WallDuration*4 {
		t.Errorf("g1 wall %d s, cpu %d s: want about 2 s and wall × 4", r.WallDuration, r.CPUDuration)
	}
	var g3Got kubehtcv1alpha1.GridJob
	if err := kc.Get(ctx, client.ObjectKeyFromObject(g3), &g3Got); err != nil {
		t.Fatal(err)
	}
	if got := byID[gridNS+".g3"][0].ServiceLevel; got != bench[g3Got.Status.Node] {
		t.Errorf("g3 ran on %s (HEPscore23 %v) but its record says %v", g3Got.Status.Node, bench[g3Got.Status.Node], got)
	}
	b := byID[batchNS+"/b2"][0]
	if b.WallDuration == stale.WallDuration || b.InfrastructureType != "local" || b.Queue != "batch-q" || b.LocalUserID != "alice" || b.Processors != 1 {
		t.Errorf("b2 record %+v: want the real run (not the stale staging), type local, queue batch-q, user alice, 1 core", b)
	}
	if b1 := byID[batchNS+"/b1"][0]; b1.Processors != 2 || b1.CPUDuration != 2*b1.WallDuration || b1.ServiceLevel != bench[batchNode] {
		t.Errorf("b1 record %+v: want 2 processors, CPU = 2 × wall, ServiceLevel %v of %s", b1, bench[batchNode], batchNode)
	}
	if err := kc.Get(ctx, client.ObjectKeyFromObject(b2), b2); err != nil {
		t.Fatal(err)
	}
	if b2.Annotations[apel.CPUSourceAnnotation] != apel.CPUEstimated || slices.Contains(b2.Finalizers, apel.Finalizer) {
		t.Errorf("b2 annotations %v finalizers %v: want cpu-source estimated and no finalizer", b2.Annotations, b2.Finalizers)
	}
	month := time.Unix(r.EndTime, 0).UTC().Format("2006-01")
	sum, err := os.ReadFile(filepath.Join(dir, "summaries", month))
	if err != nil {
		t.Fatal(err)
	}
	var jobs int
	recs, _ := a.Spool().Ledger(month)
	for _, s := range apel.Summarise(recs) {
		jobs += int(s.NumberOfJobs)
	}
	if jobs != len(want) || !bytes.Contains(sum, []byte("NumberOfJobs: ")) {
		t.Errorf("the %s summary counts %d jobs, want %d:\n%s", month, jobs, len(want), sum)
	}
	t.Logf("%d jobs recorded; summary:\n%s", len(byID), sum)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
