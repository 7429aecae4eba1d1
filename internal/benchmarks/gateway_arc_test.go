package benchmarks

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kubehtc/kubehtc/deploy/crds"
	"github.com/kubehtc/kubehtc/gridgateway/arcrest"
	"github.com/kubehtc/kubehtc/gridgateway/arcrest/arclocal"
	"github.com/kubehtc/kubehtc/gridgateway/arcrest/arctest"
	gridcontroller "github.com/kubehtc/kubehtc/gridgateway/controller"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
	"github.com/kubehtc/kubehtc/internal/controllermanager"
	"github.com/kubehtc/kubehtc/internal/localcluster"
)

// arcADL is the ADL a pilot factory (arcsub, aCT) sends: one core, 2000 MiB, 30 minutes, a simulated
// run time of 5 s.
const arcADL = `<?xml version="1.0"?>
<ActivityDescription xmlns="http://www.eu-emi.eu/es/2010/12/adl" xmlns:nordugrid-adl="http://www.nordugrid.org/es/2011/12/nordugrid-adl">
  <ActivityIdentification><Name>bench-%d</Name></ActivityIdentification>
  <Application>
    <Executable><Path>runpilot2-wrapper.sh</Path><Argument>-s</Argument><Argument>BENCH</Argument></Executable>
    <Output>out.txt</Output><Error>out.txt</Error>
    <Environment><Name>KUBEHTC_SIM_RUNTIME</Name><Value>5s</Value></Environment>
  </Application>
  <Resources>
    <QueueName>atlas-prod</QueueName>
    <IndividualPhysicalMemory>2097152000</IndividualPhysicalMemory>
    <WallTime>1800</WallTime>
    <SlotRequirement><NumberOfSlots>1</NumberOfSlots></SlotRequirement>
  </Resources>
</ActivityDescription>`

// BenchmarkGatewayArc measures how fast the ARC REST interface accepts ADL submissions on the local cluster
// (default node pools, the GridJob controller creating Pods meanwhile): -jobs POST jobs?action=new from
// -workers concurrent HTTPS clients, each authenticated with an RFC 3820 proxy of the test user (the full
// chain verified per request) over a kept-alive connection. Accepted means a 201 answer whose item is 201:
// the GridJob is stored in the API server and the description in the session store.
func BenchmarkGatewayArc(b *testing.B) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-arc-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var gw *arclocal.Gateway
	c, err := localcluster.Start(ctx, localcluster.Options{Components: []localcluster.Component{{
		Name: "crds+gridjob-controller+arc-gateway",
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
			gw, err = arclocal.StartGateway(ctx, c.RESTConfig(), c.Go, arclocal.GatewayOptions{Dir: dir, Simulation: true})
			return err
		},
	}}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	fmt.Printf("local cluster ready in %s; ARC REST at %s\n", c.StartupDuration.Round(time.Millisecond), gw.URL)
	proxy, err := gw.User.Proxy(arctest.ProxyOptions{})
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(gw.CA.Cert)
	var chain [][]byte
	for _, x := range proxy.FullChain() {
		chain = append(chain, x.Raw)
	}
	clients := make([]*http.Client, *workers)
	for i := range clients {
		clients[i] = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: proxy.Key}}},
			MaxIdleConnsPerHost: 1,
		}}
	}
	submit := func(cl *http.Client, i int) error {
		resp, err := cl.Post(gw.URL+"/rest/"+arcrest.Version+"/jobs?action=new", "", bytes.NewReader(fmt.Appendf(nil, arcADL, i)))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var doc struct {
			Jobs []struct {
				Code   int    `xml:"status-code"`
				Reason string `xml:"reason"`
			} `xml:"job"`
		}
		if err := xml.Unmarshal(body, &doc); err != nil || resp.StatusCode != http.StatusCreated || len(doc.Jobs) != 1 || doc.Jobs[0].Code != http.StatusCreated {
			return fmt.Errorf("submission %d: HTTP %d %s", i, resp.StatusCode, body)
		}
		return nil
	}
	// Warm up (TLS sessions, token-free proxy verification, the client's API discovery) before the clock runs.
	if err := parallel(*workers, *workers, func(i int) error { return submit(clients[i], -1-i) }); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		n := *gatewayJobs
		lat := make([]time.Duration, n)
		var mu sync.Mutex
		var failed int
		next := make(chan int, n)
		for i := range n {
			next <- i
		}
		close(next)
		start := time.Now()
		err := parallel(*workers, *workers, func(w int) error {
			for i := range next {
				t0 := time.Now()
				err := submit(clients[w], i)
				lat[i] = time.Since(t0)
				if err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
					return err
				}
			}
			return nil
		})
		elapsed := time.Since(start)
		if err != nil {
			b.Fatalf("%d submissions failed, first: %v", failed, err)
		}
		slices.Sort(lat)
		p := func(q float64) float64 { return float64(lat[min(n-1, int(q*float64(n)))].Microseconds()) / 1000 }
		rate := float64(n) / elapsed.Seconds()
		b.ReportMetric(rate, "jobs/s")
		fmt.Printf("%d ADL submissions accepted over ARC REST in %s by %d concurrent HTTPS clients with proxy certificates (the GridJob controller creating Pods meanwhile)\n",
			n, elapsed.Round(time.Millisecond), *workers)
		fmt.Printf("BENCH gateway-arc jobs=%d rate=%.1f p50_ms=%.2f p99_ms=%.2f\n", n, rate, p(0.50), p(0.99))
	}
}
