package deploytest

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/internal/controllermanager"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
)

// TestControllerRunsUnderChartRBAC runs kubehtc-controller's manager (internal/controllermanager, what the
// binary runs) as the chart's ServiceAccount (impersonated) with the RBAC of the all-components rendering, and
// checks that each of its controllers does its work: leader election, GridJob → Pod and status, PodGroup
// status, quota accounting into Queue status. A missing permission leaves an informer unsynced or a write
// refused, and the matching check times out.
func TestControllerRunsUnderChartRBAC(t *testing.T) {
	c := clustertest.Require(t, cluster)
	ctx := context.Background()
	releaseNamespace(t, c)
	out, err := RenderChart("--include-crds", "-f", AllComponentsValues())
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, c, objs) // the VO namespaces, the Queues and the RBAC
	if t.Failed() {
		t.FailNow()
	}

	cfg := c.JSONRESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: serviceAccountUser("kubehtc-controller"), Groups: serviceAccountGroups}
	opts := controllermanager.DefaultOptions()
	opts.MetricsAddr, opts.HealthAddr = "0", "0"
	opts.LeaderElection, opts.Namespace = true, Namespace
	opts.WebhookCertDir = "" // no webhook server: admission is tested in csi/webhook
	mgr, err := controllermanager.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	scheme, err := controllermanager.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(c.JSONRESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	const ns = "vo-atlas"

	// A GridJob as the gateway creates it; the controller creates its Pod and reports its state.
	gj := &kubehtcv1alpha1.GridJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rbac-job"},
		Spec: kubehtcv1alpha1.GridJobSpec{
			Owner: kubehtcv1alpha1.GridJobOwner{Issuer: "https://atlas-auth.cern.ch/", Subject: "pilot-factory"},
			VO:    "atlas", Queue: "grid",
			Description: kubehtcv1alpha1.GridJobDescription{Cores: 1, MemoryMiB: 1000, WallTimeSeconds: 600, Image: "pilot:1"},
		},
	}
	// A gang of two with one member: the PodGroup controller writes its status.
	pg := &schedv1alpha1.PodGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rbac-gang"},
		Spec:       schedv1alpha1.PodGroupSpec{MinMember: 2},
	}
	member := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rbac-gang-0", Labels: map[string]string{schedv1alpha1.PodGroupLabel: pg.Name}},
		Spec: corev1.PodSpec{
			SchedulerName: "kubehtc",
			Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
		},
	}
	for _, o := range []client.Object{gj, pg, member} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
		t.Cleanup(func() { _ = admin.Delete(context.Background(), o) })
	}

	clustertest.Poll(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		var l metav1.PartialObjectMetadata
		l.SetGroupVersionKind(coordinationLease)
		err := admin.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: "kubehtc-controller"}, &l)
		return err == nil, client.IgnoreNotFound(err)
	})
	t.Log("leader election: lease kubehtc-controller held")

	clustertest.Poll(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		var got kubehtcv1alpha1.GridJob
		if err := admin.Get(ctx, client.ObjectKeyFromObject(gj), &got); err != nil {
			return false, err
		}
		return got.Status.State != "" && got.Status.PodName != "", nil
	})
	t.Log("GridJob: Pod created, status written")

	clustertest.Poll(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		var got schedv1alpha1.PodGroup
		if err := admin.Get(ctx, client.ObjectKeyFromObject(pg), &got); err != nil {
			return false, err
		}
		return got.Status.Phase != "", nil
	})
	t.Log("PodGroup: status written")

	clustertest.Poll(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		var root kubehtcv1alpha1.Queue
		if err := admin.Get(ctx, types.NamespacedName{Name: "root"}, &root); err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(root.Status.Conditions, kubehtcv1alpha1.QueueConditionAccounted), nil
	})
	t.Log("quota: root Queue accounted")
}

var coordinationLease = coordinationv1.SchemeGroupVersion.WithKind("Lease")
