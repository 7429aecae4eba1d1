package grpcapi

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/jobs"
	"github.com/kubehtc/kubehtc/gridgateway/session"
)

// Config is what a running gateway needs.
type Config struct {
	// Site is the site configuration.
	Site *config.Site
	// Auth verifies callers.
	Auth *auth.Authenticator
	// REST is the Kubernetes client configuration; Serve switches it to JSON (GridJob is a CRD).
	REST *rest.Config
	// Listener accepts gRPC connections.
	Listener net.Listener
	// TLS serves TLS (nil: plaintext).
	TLS *tls.Config
	// Registerer receives the gateway's metrics (nil: none).
	Registerer prometheus.Registerer
	// Outputs is the session store that ListOutputs and GetOutput read (nil: those calls answer
	// FailedPrecondition).
	Outputs session.Outputs
	// MaxOutputBytes bounds a downloaded file (0: DefaultMaxOutputBytes).
	MaxOutputBytes int64
	// ShutdownTimeout is how long in-flight calls may finish when ctx ends; 0 means 10 s.
	ShutdownTimeout time.Duration
}

// Serve runs the gateway until ctx ends, then stops it gracefully (forcibly after cfg.ShutdownTimeout).
func Serve(ctx context.Context, cfg Config) error {
	c, err := jobs.NewClient(cfg.REST)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	g := NewGRPCServer(&Server{Client: c, Site: cfg.Site, Outputs: cfg.Outputs, MaxOutputBytes: cfg.MaxOutputBytes}, cfg.Auth, cfg.TLS, cfg.Registerer)
	logger := klog.FromContext(ctx)
	logger.Info("Grid gateway serving", "address", cfg.Listener.Addr().String(), "tls", cfg.TLS != nil)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(cfg.Listener) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(cmp.Or(cfg.ShutdownTimeout, 10*time.Second)):
		g.Stop()
	}
	logger.Info("Grid gateway stopped")
	return nil
}
