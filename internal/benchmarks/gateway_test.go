package benchmarks

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kubehtc/kubehtc/deploy/crds"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	gridcontroller "github.com/kubehtc/kubehtc/gridgateway/controller"
	localgateway "github.com/kubehtc/kubehtc/gridgateway/local"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
	"github.com/kubehtc/kubehtc/internal/controllermanager"
	"github.com/kubehtc/kubehtc/internal/localcluster"
)

var gatewayJobs = flag.Int("jobs", 2000, "pilots submitted through the gateway (gateway-grpc)")

// BenchmarkGatewayGrpc measures how fast the grid gateway accepts pilots over gRPC on the local cluster
// (default node pools, the GridJob controller creating Pods meanwhile): -jobs submissions from -workers
// concurrent clients of two VOs. Accepted means Submit returned: the GridJob is stored in the API server.
func BenchmarkGatewayGrpc(b *testing.B) {
	ctx := context.Background()
	var gw *localgateway.Gateway
	c, err := localcluster.Start(ctx, localcluster.Options{Components: []localcluster.Component{{
		Name: "crds+gridjob-controller+gateway",
		Start: func(ctx context.Context, c *localcluster.Cluster) error {
			if err := c.InstallCRDs(ctx, crds.All()...); err != nil {
				return err
			}
			scheme, err := controllermanager.Scheme()
			if err != nil {
				return err
			}
			ctrl.SetLogger(klog.Background())
			mgr, err := ctrl.NewManager(c.JSONRESTConfig(), ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
			if err != nil {
				return err
			}
			r := &gridcontroller.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
				Options: gridcontroller.Options{Pod: translate.PodOptions{SchedulerName: "kubehtc", Simulation: true}}}
			if err := r.SetupWithManager(mgr); err != nil {
				return err
			}
			c.Go(func() { _ = mgr.Start(ctx) })
			gw, err = localgateway.Start(ctx, c.RESTConfig(), c.Go)
			return err
		},
	}}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	fmt.Printf("local cluster ready in %s; gateway at %s\n", c.StartupDuration.Round(time.Millisecond), gw.Address)
	clients := map[string]gatewayv1.GatewayClient{}
	for _, vo := range localgateway.VOs {
		cl, conn, err := gw.Dial(vo)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		clients[vo] = cl
	}
	// Warm up (connections, token verification, the client's API discovery) before the clock runs.
	if err := parallel(*workers, *workers, func(i int) error {
		vo := localgateway.VOs[i%len(localgateway.VOs)]
		_, err := clients[vo].Submit(ctx, &gatewayv1.SubmitRequest{ClientKey: fmt.Sprintf("warmup-%03d", i), Description: &gatewayv1.JobDescription{Queue: vo + "-prod", Environment: map[string]string{translate.SimRuntimeEnv: "1s"}}})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for round := range b.N {
		n := *gatewayJobs
		lat := make([]time.Duration, n)
		var mu sync.Mutex
		var failed int
		start := time.Now()
		err := parallel(n, *workers, func(i int) error {
			vo := localgateway.VOs[i%len(localgateway.VOs)]
			desc := &gatewayv1.JobDescription{Queue: vo + "-prod", Cores: 1, MemoryMib: 2000, Executable: "runpilot2-wrapper.sh",
				Environment: map[string]string{translate.SimRuntimeEnv: "5s"}}
			t0 := time.Now()
			_, err := clients[vo].Submit(ctx, &gatewayv1.SubmitRequest{ClientKey: fmt.Sprintf("bench-%d-%06d", round, i), Description: desc})
			lat[i] = time.Since(t0)
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
			return err
		})
		elapsed := time.Since(start)
		if err != nil {
			b.Fatalf("%d of %d submissions failed, first: %v", failed, n, err)
		}
		slices.Sort(lat)
		p := func(q float64) float64 { return float64(lat[min(n-1, int(q*float64(n)))].Microseconds()) / 1000 }
		rate := float64(n) / elapsed.Seconds()
		b.ReportMetric(rate, "jobs/s")
		fmt.Printf("%d pilots accepted in %s by %d concurrent clients of %d VOs (the GridJob controller creating Pods meanwhile)\n",
			n, elapsed.Round(time.Millisecond), *workers, len(localgateway.VOs))
		fmt.Printf("BENCH gateway-grpc jobs=%d rate=%.1f p50_ms=%.2f p99_ms=%.2f\n", n, rate, p(0.50), p(0.99))
	}
}
