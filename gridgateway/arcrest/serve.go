package arcrest

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// TLSConfig is the server side of ARC REST's TLS: the server certificate, and client certificates
// requested but neither required (token clients present none) nor verified by crypto/tls, which cannot
// verify RFC 3820 proxy chains; Server verifies them.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
		// HTTP/1.1 only: the ARC client speaks it, with keep-alive.
		NextProtos: []string{"http/1.1"},
	}
}

// Serve serves h over TLS on lis until ctx ends, then shuts down gracefully (at most shutdown; 0 means
// 10 s).
func Serve(ctx context.Context, lis net.Listener, tlsConfig *tls.Config, h http.Handler, shutdown time.Duration) error {
	logger := klog.FromContext(ctx)
	hs := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		// TLS handshake failures (clients without a trusted CA, scanners) are routine: verbosity 2.
		ErrorLog: log.New(serverLog{logger}, "", 0),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(tls.NewListener(lis, tlsConfig)) }()
	logger.Info("ARC REST interface serving", "address", lis.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(shutdown, 10*time.Second))
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = hs.Close()
	}
	logger.Info("ARC REST interface stopped")
	return err
}

// serverLog turns net/http's error log lines into structured log entries.
type serverLog struct{ logger klog.Logger }

// Write implements io.Writer.
func (l serverLog) Write(p []byte) (int, error) {
	l.logger.V(2).Info("HTTPS server", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}
