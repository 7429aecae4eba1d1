package integration

import (
	"context"
	"fmt"
	"os"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/deploy/crds"
	"github.com/kubehtc/kubehtc/gridgateway/arcrest/arclocal"
	"github.com/kubehtc/kubehtc/gridgateway/controller"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
)

var (
	cluster *localcluster.Cluster
	gw      *arclocal.Gateway
	// kc is a direct (uncached) client of the cluster.
	kc client.Client
)

// TestMain starts one local cluster with the CRDs, the GridJob controller (simulated runtimes, as the
// local cluster runs it) and the ARC REST gateway with a throw-away PKI.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "arcrest-it-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := kubehtcv1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	opts := localcluster.Options{Components: []localcluster.Component{{
		Name: "crds+gridjob-controller+arc-gateway",
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
			gw, err = arclocal.StartGateway(ctx, c.RESTConfig(), c.Go, arclocal.GatewayOptions{Dir: dir, Simulation: true, MaxUploadBytes: 1 << 20})
			if err != nil {
				return err
			}
			kc, err = client.New(c.JSONRESTConfig(), client.Options{Scheme: scheme})
			return err
		},
	}}}
	os.Exit(clustertest.Main(m, opts, &cluster))
}
