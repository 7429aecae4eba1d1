package arcrest

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/jobs"
	"github.com/kubehtc/kubehtc/gridgateway/session"
)

// Paths of the interface.
const (
	// BasePath is where ARC clients find the service (they add /arex to a bare host).
	BasePath = "/arex"
	// RESTPath lists the API versions.
	RESTPath = BasePath + "/rest"
	// Version is the one API version served.
	Version = "1.0"
	// APIPath is the root of API version 1.0.
	APIPath = RESTPath + "/" + Version
	// InterfaceName is the GLUE2 interface name of the endpoint.
	InterfaceName = "org.nordugrid.arcrest"
)

// Options configure a Server.
type Options struct {
	// Site is the site configuration (queues, VOs, runtime environments).
	Site *config.Site
	// Auth verifies bearer tokens and maps identities to VOs.
	Auth *auth.Authenticator
	// CAs are the trust anchors for client proxy chains and delegated chains (auth.LoadCADir); nil refuses
	// certificate clients and X.509 delegations.
	CAs *x509.CertPool
	// Client talks to the API server directly (JSON; GridJob is a CRD). It needs GridJobs, Secrets, and
	// for the info document Nodes and Pods.
	Client client.WithWatch
	// Store holds session directories and control files.
	Store session.Store
	// PublicURL is the endpoint URL published in GLUE2 (https://host:port/arex); empty derives it from the
	// request's Host.
	PublicURL string
	// ServiceName is the GLUE2 ComputingService name; empty means "kubehtc".
	ServiceName string
	// MaxUploadBytes bounds one uploaded file; 0 means 1 GiB. Bigger uploads get 413.
	MaxUploadBytes int64
	// MaxJobsPerRequest bounds the job descriptions of one submission; 0 means DefaultMaxJobsPerRequest
	// (1,000). More is refused with 413.
	MaxJobsPerRequest int
	// SessionLifetime is how long a finished job's session directory is kept (published as
	// WorkingAreaLifeTime); 0 means 7 days.
	SessionLifetime time.Duration
	// Simulation makes the output collector write the simulated Pod's record (see Collector) instead of
	// reading container logs: the local cluster's nodes run no containers.
	Simulation bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registerer receives the interface's metrics (nil: none).
	Registerer prometheus.Registerer
}

// Server serves the ARC REST interface. It is an http.Handler; serve it over TLS with client certificates
// requested but not verified by crypto/tls (tls.RequestClientCert), because proxy chains are verified here.
type Server struct {
	opts    Options
	metrics *metrics
	// core is the gateway core: every GridJob this door creates, reads, cancels or cleans goes through it.
	core *jobs.Service

	infoMu     sync.Mutex
	infoCached *capacity
	infoAt     time.Time
}

// New returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Site == nil || opts.Auth == nil || opts.Client == nil || opts.Store == nil {
		return nil, errors.New("arcrest: Site, Auth, Client and Store are required")
	}
	opts.MaxUploadBytes = cmp.Or(opts.MaxUploadBytes, 1<<30)
	opts.SessionLifetime = cmp.Or(opts.SessionLifetime, 7*24*time.Hour)
	opts.ServiceName = cmp.Or(opts.ServiceName, "kubehtc")
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{opts: opts, metrics: newMetrics(opts.Registerer), core: &jobs.Service{Client: opts.Client, Site: opts.Site}}, nil
}

// metrics of the ARC REST interface; the route label is bounded (see route).
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubehtc_gateway_arc_requests_total", Help: "ARC REST requests of the grid gateway by route, method and HTTP status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kubehtc_gateway_arc_request_duration_seconds", Help: "Duration of ARC REST requests of the grid gateway by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency)
	}
	return m
}

// route names a request's endpoint for metrics: a fixed set, never ids or paths.
func route(r *http.Request) string {
	rest, ok := strings.CutPrefix(r.URL.Path, APIPath+"/")
	if !ok {
		if r.URL.Path == RESTPath || r.URL.Path == RESTPath+"/" {
			return "versions"
		}
		return "other"
	}
	head, tail, _ := strings.Cut(rest, "/")
	switch head {
	case "info":
		return "info"
	case "jobs":
		if tail == "" {
			switch a := r.URL.Query().Get("action"); a {
			case "":
				return "jobs"
			case "new", "info", "status", "kill", "clean", "restart", "delegations":
				return "jobs:" + a
			}
			return "jobs:unknown"
		}
		if _, sub, _ := strings.Cut(tail, "/"); strings.HasPrefix(sub, "diagnose") {
			return "diagnose"
		}
		return "session"
	case "delegations":
		return "delegations"
	}
	return "other"
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

// WriteHeader implements http.ResponseWriter.
func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// httpError is an error with the HTTP status it answers with.
type httpError struct {
	code int
	msg  string
}

// Error implements error.
func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// statusOf maps any error of the package to an HTTP status: the one place where errors become codes.
func statusOf(err error) int {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.As(err, &mbe), errors.Is(err, session.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, session.ErrBadPath):
		return http.StatusBadRequest
	case errors.Is(err, ErrDescription):
		return http.StatusBadRequest
	case errors.Is(err, fs.ErrNotExist), apierrors.IsNotFound(err):
		return http.StatusNotFound
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err), errors.Is(err, jobs.ErrConflict), errors.Is(err, jobs.ErrConcurrentUpdate):
		return http.StatusConflict
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), errors.Is(err, jobs.ErrInvalid):
		return http.StatusBadRequest
	case apierrors.IsForbidden(err), errors.Is(err, jobs.ErrForbidden), errors.Is(err, auth.ErrPermissionDenied):
		return http.StatusForbidden
	case errors.Is(err, auth.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, jobs.ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// message is the text of an error for a client.
func message(err error) string { return err.Error() }

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	logger := klog.FromContext(r.Context())
	if code >= 500 {
		logger.Error(err, "ARC REST request failed", "method", r.Method, "path", r.URL.Path)
	} else {
		logger.V(2).Info("ARC REST request refused", "method", r.Method, "path", r.URL.Path, "code", code, "reason", message(err))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, message(err))
}

// respond writes a document as XML or, when the client accepts it, JSON.
func respond(w http.ResponseWriter, r *http.Request, code int, doc *node) {
	if wantsJSON(r.Header.Get("Accept")) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = doc.writeJSON(w)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(code)
	_ = doc.writeXML(w)
}

// ServeHTTP implements http.Handler. Routing uses r.URL.Path, so the absolute-form request targets of the
// ARC client work.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	s.serve(rec, r)
	rt := route(r)
	method := r.Method
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, "PROPFIND":
	default:
		method = "other"
	}
	s.metrics.requests.WithLabelValues(rt, method, strconv.Itoa(cmp.Or(rec.code, http.StatusOK))).Inc()
	s.metrics.latency.WithLabelValues(rt).Observe(time.Since(start).Seconds())
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == RESTPath || p == RESTPath+"/":
		s.versions(w, r)
		return
	case !strings.HasPrefix(p, RESTPath+"/"):
		// E.g. the SOAP EMI-ES POST /arex that arcinfo and arcsync also try: not served.
		writeError(w, r, errorf(http.StatusNotFound, "Not Found"))
		return
	case !strings.HasPrefix(p, APIPath+"/") && p != APIPath:
		writeError(w, r, errorf(http.StatusNotFound, "Version Not Supported"))
		return
	}
	id, err := s.authenticate(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(p, APIPath), "/")
	head, tail, _ := strings.Cut(rest, "/")
	switch head {
	case "info":
		err = s.info(w, r, id)
	case "jobs":
		err = s.jobs(w, r, id, tail)
	case "delegations":
		err = s.delegations(w, r, id, tail)
	default:
		err = errorf(http.StatusNotFound, "Not Found")
	}
	if err != nil {
		writeError(w, r, err)
	}
}

// versions answers GET /arex/rest.
func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, r, errorf(http.StatusMethodNotAllowed, "Method not allowed"))
		return
	}
	respond(w, r, http.StatusOK, el("versions", leaf("version", Version)))
}

// authenticate identifies the caller: a bearer token if the request carries one (the ARC client then
// presents no certificate), else the TLS client chain, verified as an RFC 3820 proxy chain.
func (s *Server) authenticate(r *http.Request) (*auth.Identity, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		raw, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, errorf(http.StatusUnauthorized, "the Authorization header is not a Bearer token")
		}
		return s.opts.Auth.VerifyToken(r.Context(), strings.TrimSpace(raw))
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if s.opts.CAs == nil {
			return nil, errorf(http.StatusUnauthorized, "certificate authentication is not configured")
		}
		return s.opts.Auth.VerifyProxyCertificate(r.TLS.PeerCertificates, s.opts.CAs)
	}
	return nil, errorf(http.StatusUnauthorized, "no bearer token and no client certificate")
}

// requireScope refuses a token caller whose token lacks scope (certificates carry no scopes).
func requireScope(id *auth.Identity, scope string) error {
	if !id.HasScope(scope) {
		return errorf(http.StatusForbidden, "Operation is not allowed: token lacks scope %s", scope)
	}
	return nil
}

// readBody reads a request body of at most limit bytes (413 beyond, before reading if Content-Length
// says so, so that a client waiting on Expect: 100-continue sends nothing).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body of %d bytes exceeds the limit of %d", r.ContentLength, limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "request body exceeds the limit of %d bytes", limit)
		}
		return nil, errorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	return b, nil
}

func (s *Server) now() time.Time { return s.opts.Now() }

// publicURL is the endpoint URL of the service as clients reach it.
func (s *Server) publicURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimSuffix(s.opts.PublicURL, "/")
	}
	return "https://" + r.Host + BasePath
}

// background is a context for work that must finish even if the client goes away.
func background(r *http.Request) context.Context {
	return context.WithoutCancel(r.Context())
}

// LoadCADirOrNil loads the trust anchors of an IGTF CA directory (auth.LoadCADir); a directory that does
// not exist gives nil (certificate clients and X.509 delegations are then refused) rather than an error.
func LoadCADirOrNil(dir string) (*x509.CertPool, int, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	return auth.LoadCADir(dir)
}
