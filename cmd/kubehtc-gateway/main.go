// Command kubehtc-gateway is the grid gateway: pilot factories submit jobs over gRPC (gridgateway/api/v1)
// or the ARC CE REST interface (gridgateway/arcrest, with -arc-listen), authenticated with WLCG tokens,
// mTLS client certificates or RFC 3820 proxies; each job becomes a GridJob that kubehtc-controller turns
// into a Pod.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubehtc/kubehtc/gridgateway/arcrest"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/grpcapi"
	"github.com/kubehtc/kubehtc/gridgateway/jobs"
	"github.com/kubehtc/kubehtc/gridgateway/session"
)

func main() {
	var (
		siteFile  = flag.String("config", "/etc/kubehtc/gateway/site.yaml", "site configuration (queues, VOs, issuers, runtime environments)")
		listen    = flag.String("listen", ":8443", "gRPC listen address")
		certFile  = flag.String("tls-cert", "", "server certificate (PEM); with -tls-key")
		keyFile   = flag.String("tls-key", "", "server key (PEM)")
		clientCA  = flag.String("client-ca", "", "CA bundle (PEM) for client certificates; empty: token authentication only")
		insecure  = flag.Bool("insecure", false, "serve plaintext gRPC (development only; tokens travel in clear)")
		httpAddr  = flag.String("http-listen", ":8080", "address of /metrics, /healthz and /readyz (empty disables)")
		shutdownT = flag.Duration("shutdown-timeout", 10*time.Second, "grace period for in-flight calls on SIGTERM")
		arc       arcFlags
	)
	flag.StringVar(&arc.listen, "arc-listen", "", "ARC CE REST listen address (HTTPS, e.g. :443; empty disables); uses -tls-cert and -tls-key")
	flag.StringVar(&arc.caDir, "arc-ca-dir", "/etc/grid-security/certificates", "CA directory (IGTF layout, hash links) for client proxies and delegations")
	flag.StringVar(&arc.sessionDir, "arc-session-dir", "/var/lib/kubehtc/sessions", "session store directory (a ReadWriteMany volume shared with the job Pods); the gRPC API's ListOutputs/GetOutput read it too (without -arc-listen only when this flag is given)")
	flag.Int64Var(&arc.maxDownload, "max-output-bytes", grpcapi.DefaultMaxOutputBytes, "largest file the gRPC GetOutput call sends (ResourceExhausted beyond)")
	flag.StringVar(&arc.vomsDir, "arc-voms-dir", "/etc/grid-security/vomsdir", "vomsdir (<vo>/<host>.lsc) trusting VOMS servers whose attribute certificates in client proxies give FQANs for the VO mapping; a missing directory ignores VOMS attributes")
	flag.StringVar(&arc.publicURL, "arc-public-url", "", "endpoint URL published in GLUE2, e.g. https://ce.example.org/arex (empty: from the request's Host)")
	flag.Int64Var(&arc.maxUpload, "arc-max-upload-bytes", 1<<30, "largest file a client may upload to a session directory (413 beyond)")
	flag.DurationVar(&arc.lifetime, "arc-session-lifetime", 7*24*time.Hour, "how long a finished job and its session directory are kept")
	klog.InitFlags(nil)
	flag.Parse()
	flag.Visit(func(f *flag.Flag) { arc.sessionDirSet = arc.sessionDirSet || f.Name == "arc-session-dir" })
	logger := klog.Background()
	ctx, stop := signal.NotifyContext(klog.NewContext(context.Background(), logger), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *siteFile, *listen, *certFile, *keyFile, *clientCA, *insecure, *httpAddr, *shutdownT, arc); err != nil {
		logger.Error(err, "kubehtc-gateway failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run(ctx context.Context, siteFile, listen, certFile, keyFile, clientCA string, insecure bool, httpAddr string, shutdown time.Duration, arc arcFlags) error {
	site, err := config.Load(siteFile)
	if err != nil {
		return err
	}
	a, err := auth.New(ctx, site)
	if err != nil {
		return err
	}
	tlsConfig, err := serverTLS(certFile, keyFile, clientCA, insecure)
	if err != nil {
		return err
	}
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	if err := checkSiteAgainstNodes(ctx, restConfig, site); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if httpAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
		mux.HandleFunc("/healthz", ok)
		mux.HandleFunc("/readyz", ok)
		hs := &http.Server{Addr: httpAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				klog.FromContext(ctx).Error(err, "HTTP endpoint failed")
			}
		}()
		defer hs.Close()
	}
	var outputs session.Outputs
	switch {
	case arc.listen != "":
		store, err := startARC(ctx, arc, site, a, restConfig, certFile, keyFile, shutdown, reg)
		if err != nil {
			return err
		}
		outputs = session.OutputStore(store)
	case arc.sessionDirSet:
		store, err := startCollector(ctx, arc, site, restConfig)
		if err != nil {
			return err
		}
		outputs = session.OutputStore(store)
	default:
		klog.FromContext(ctx).Info("No session store (-arc-session-dir): the gRPC output calls answer FailedPrecondition")
	}
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	return grpcapi.Serve(ctx, grpcapi.Config{Site: site, Auth: a, REST: restConfig, Listener: lis, TLS: tlsConfig, Registerer: reg,
		ShutdownTimeout: shutdown, Outputs: outputs, MaxOutputBytes: arc.maxDownload})
}

// serverTLS builds the TLS configuration: a server certificate, and client certificates verified against
// clientCA when given (optional, so that token clients without certificates connect too).
func serverTLS(certFile, keyFile, clientCA string, insecure bool) (*tls.Config, error) {
	if insecure {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("-tls-cert and -tls-key are required (or -insecure for development)")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificates", clientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// arcFlags are the ARC REST interface's flags.
type arcFlags struct {
	listen, caDir, sessionDir, publicURL, vomsDir string
	maxUpload, maxDownload                        int64
	lifetime                                      time.Duration
	// sessionDirSet: -arc-session-dir was given (a gRPC-only gateway then keeps a session store).
	sessionDirSet bool
}

// startCollector runs the output collector on the session store for a gateway without the ARC REST
// interface, so that gRPC jobs' outputs are collected (ListOutputs, GetOutput).
func startCollector(ctx context.Context, f arcFlags, site *config.Site, restConfig *rest.Config) (session.Store, error) {
	c, err := jobs.NewClient(restConfig)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	store, err := session.NewFileStore(f.sessionDir)
	if err != nil {
		return nil, err
	}
	collector := &session.Collector{Client: c, Site: site, Store: store, Logs: session.PodLogs(cs), SessionLifetime: f.lifetime}
	klog.FromContext(ctx).Info("Session store for gRPC outputs", "sessionDir", f.sessionDir)
	go collector.Run(ctx)
	return store, nil
}

// startARC serves the ARC CE REST interface beside the gRPC API and runs its output collector; it returns
// the session store.
func startARC(ctx context.Context, f arcFlags, site *config.Site, a *auth.Authenticator, restConfig *rest.Config, certFile, keyFile string, shutdown time.Duration, reg prometheus.Registerer) (session.Store, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("-arc-listen needs -tls-cert and -tls-key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cas, n, err := arcrest.LoadCADirOrNil(f.caDir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(f.vomsDir); err == nil && fi.IsDir() && cas != nil {
		a.VOMS = &auth.VOMSVerifier{Dir: f.vomsDir, Roots: cas}
		klog.FromContext(ctx).Info("VOMS attribute certificates verified", "vomsDir", f.vomsDir)
	}
	c, err := jobs.NewClient(restConfig)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	store, err := session.NewFileStore(f.sessionDir)
	if err != nil {
		return nil, err
	}
	srv, err := arcrest.New(arcrest.Options{Site: site, Auth: a, CAs: cas, Client: c, Store: store, PublicURL: f.publicURL,
		MaxUploadBytes: f.maxUpload, SessionLifetime: f.lifetime, Registerer: reg})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, err
	}
	klog.FromContext(ctx).Info("ARC REST interface", "address", f.listen, "trustedCAs", n, "sessionDir", f.sessionDir)
	go func() {
		if err := arcrest.Serve(ctx, lis, arcrest.TLSConfig(cert), srv, shutdown); err != nil {
			klog.FromContext(ctx).Error(err, "ARC REST interface failed")
		}
	}()
	go srv.RunCollector(ctx, session.PodLogs(cs))
	return store, nil
}

// checkSiteAgainstNodes refuses a site configuration whose limits no node of the cluster can satisfy.
func checkSiteAgainstNodes(ctx context.Context, cfg *rest.Config, site *config.Site) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing nodes to check the site configuration: %w", err)
	}
	if err := site.CheckNodes(config.NodeSizes(nodes.Items)); err != nil {
		return fmt.Errorf("site configuration against the cluster's nodes: %w", err)
	}
	return nil
}
