package integration

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/deploy/crds"
	"github.com/kubehtc/kubehtc/gridgateway/controller"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
	"github.com/kubehtc/kubehtc/internal/localcluster"
)

var (
	cluster *localcluster.Cluster
	scheme  = runtime.NewScheme()
	// kc is a direct (uncached) client of the cluster.
	kc client.WithWatch
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(run(m))
}

// run starts the local cluster, installs the CRDs and runs the GridJob controller (as the local cluster
// does, with simulated runtimes) for every test of the package.
func run(m *testing.M) int {
	ctx := context.Background()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := kubehtcv1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	var err error
	cluster, err = localcluster.Start(ctx, localcluster.Options{Components: []localcluster.Component{{
		Name: "crds+gridjob-controller",
		Start: func(ctx context.Context, c *localcluster.Cluster) error {
			if err := c.InstallCRDs(ctx, crds.All()...); err != nil {
				return err
			}
			ctrl.SetLogger(klog.Background())
			mgr, err := ctrl.NewManager(c.JSONRESTConfig(), ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
			if err != nil {
				return err
			}
			r := &controller.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
				Options: controller.Options{Pod: translate.PodOptions{SchedulerName: "kubehtc", Simulation: true}}}
			if err := r.SetupWithManager(mgr); err != nil {
				return err
			}
			c.Go(func() {
				if err := mgr.Start(ctx); err != nil {
					fmt.Fprintln(os.Stderr, "controller manager:", err)
				}
			})
			return nil
		},
	}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local cluster:", err)
		return 1
	}
	if kc, err = client.NewWithWatch(cluster.JSONRESTConfig(), client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the local cluster:", err)
		code = 1
	}
	return code
}

func requireCluster(t *testing.T) {
	t.Helper()
	if cluster == nil {
		t.Skip("integration test: needs the local cluster (not started with -short)")
	}
}

// namespace creates a namespace (if missing) and waits for its default ServiceAccount.
func namespace(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	err := kc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	poll(t, time.Minute, "default ServiceAccount in "+name, func(ctx context.Context) (bool, error) {
		return kc.Get(ctx, client.ObjectKey{Namespace: name, Name: "default"}, &corev1.ServiceAccount{}) == nil, nil
	})
}

func poll(t *testing.T, timeout time.Duration, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
