// Package arclocal runs the ARC REST gateway on a local cluster for integration tests and benchmarks, with a
// throw-away PKI (arctest) and token issuer.
package arclocal

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/gridgateway/arcrest"
	"github.com/kubehtc/kubehtc/gridgateway/arcrest/arctest"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/jobs"
	"github.com/kubehtc/kubehtc/gridgateway/session"
)

// Identities and names of the test site.
const (
	// Issuer and Audience of the test tokens.
	Issuer   = "https://issuer.arc.kubehtc.test/"
	Audience = "https://localhost/arex"
	// UserCN is the common name of the test user (VO atlas); OtherUserCN is a second user of the same VO.
	UserCN      = "Pilot Factory User"
	OtherUserCN = "Second Pilot User"
	// Namespace holds the atlas VO's jobs; Queue is its queue.
	Namespace = "arc-atlas"
	Queue     = "atlas-prod"
	// AllScopes are the WLCG compute scopes.
	AllScopes = "compute.create compute.read compute.modify compute.cancel"
)

// SiteYAML is the test site: VO atlas (certificates of the test CA's users, tokens of the test issuer with
// group /atlas) with queue atlas-prod.
const SiteYAML = `
audiences: [https://localhost/arex]
issuers:
- {url: https://issuer.arc.kubehtc.test/, jwksFile: generated}
vos:
- name: atlas
  namespace: arc-atlas
  certificates: [{dn: "/O=kubehtc test/OU=users/CN=.*"}]
  tokens: [{issuer: https://issuer.arc.kubehtc.test/, group: /atlas}]
queues:
- name: atlas-prod
  vos: [atlas]
  image: registry.example.org/atlas/pilot:1
  defaultWallTimeSeconds: 3600
  limits: {maxCores: 16, maxMemoryMiB: 65536, maxWallTimeSeconds: 172800, maxDiskMiB: 102400}
runtimeEnvironments:
- {name: APPS/HEP/ATLAS-SITE, cvmfs: [atlas.cern.ch, sft.cern.ch]}
- {name: ENV/PROXY, mountCredential: true}
`

// Gateway is an ARC REST gateway started for tests, with its PKI on disk.
type Gateway struct {
	// URL is the service URL clients use: https://localhost:<port>/arex.
	URL string
	// Addr is host:port of the listener.
	Addr string
	// CertDir is the CA directory in the IGTF layout (X509_CERT_DIR for clients).
	CertDir string
	// UserCertFile, UserKeyFile are the test user's certificate and key (PEM, key unencrypted).
	UserCertFile, UserKeyFile string
	// CA and User are the test CA and user.
	CA, User *arctest.Cert
	// StoreDir is the session store's directory.
	StoreDir string
	// Server is the handler.
	Server *arcrest.Server
	// Site is the site configuration.
	Site *config.Site
	// Metrics holds the interface's metrics.
	Metrics *prometheus.Registry

	signer jose.Signer
}

// GatewayOptions configure StartGateway.
type GatewayOptions struct {
	// Dir receives the PKI and the session store.
	Dir string
	// Simulation: see arcrest.Options.Simulation.
	Simulation bool
	// MaxUploadBytes: see arcrest.Options.
	MaxUploadBytes int64
}

// StartGateway creates the test PKI and the VO namespaces, and serves the ARC REST interface on a
// loopback port (run runs the serving loops, e.g. localcluster.Cluster.Go) until ctx ends.
func StartGateway(ctx context.Context, cfg *rest.Config, run func(func()), o GatewayOptions) (*Gateway, error) {
	g := &Gateway{CertDir: filepath.Join(o.Dir, "certificates"), StoreDir: filepath.Join(o.Dir, "sessions"),
		UserCertFile: filepath.Join(o.Dir, "user", "usercert.pem"), UserKeyFile: filepath.Join(o.Dir, "user", "userkey.pem")}
	now := time.Now()
	var err error
	if g.CA, err = arctest.NewCA(pkix.Name{Organization: []string{"kubehtc test"}, CommonName: "kubehtc test CA"}, now.Add(-time.Hour), now.Add(30*24*time.Hour)); err != nil {
		return nil, err
	}
	host, err := g.CA.IssueHost("localhost", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, now.Add(30*24*time.Hour))
	if err != nil {
		return nil, err
	}
	if g.User, err = g.CA.IssueUser(arctest.UserSubject(UserCN), now.Add(-time.Hour), now.Add(30*24*time.Hour)); err != nil {
		return nil, err
	}
	if err := arctest.WriteCADir(g.CertDir, g.CA); err != nil {
		return nil, err
	}
	if err := arctest.WriteFile(g.UserCertFile, g.User.CertPEM()); err != nil {
		return nil, err
	}
	if err := arctest.WriteFile(g.UserKeyFile, g.User.KeyPEM()); err != nil {
		return nil, err
	}
	if g.Site, err = config.Parse([]byte(SiteYAML)); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if g.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "arctest"}}, nil); err != nil {
		return nil, err
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, KeyID: "arctest", Algorithm: string(jose.ES256), Use: "sig"}
	a := auth.NewWithKeys(g.Site, map[string]*jose.JSONWebKeySet{Issuer: {Keys: []jose.JSONWebKey{pub}}})
	cas, _, err := auth.LoadCADir(g.CertDir)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	for _, vo := range g.Site.VOs {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: vo.Namespace}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("namespace %s: %w", vo.Namespace, err)
		}
	}
	c, err := jobs.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	store, err := session.NewFileStore(g.StoreDir)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g.Addr = lis.Addr().String()
	_, port, _ := net.SplitHostPort(g.Addr)
	g.URL = "https://localhost:" + port + arcrest.BasePath
	g.Metrics = prometheus.NewRegistry()
	g.Server, err = arcrest.New(arcrest.Options{Registerer: g.Metrics, Site: g.Site, Auth: a, CAs: cas, Client: c, Store: store, PublicURL: g.URL,
		Simulation: o.Simulation, MaxUploadBytes: o.MaxUploadBytes, ServiceName: "kubehtc-test"})
	if err != nil {
		return nil, err
	}
	tlsCert := tls.Certificate{Certificate: [][]byte{host.Cert.Raw}, PrivateKey: host.Key, Leaf: host.Cert}
	run(func() {
		if err := arcrest.Serve(ctx, lis, arcrest.TLSConfig(tlsCert), g.Server, time.Second); err != nil {
			klog.FromContext(ctx).Error(err, "ARC REST test gateway stopped")
		}
	})
	run(func() { g.Server.RunCollector(ctx, nil) })
	return g, nil
}

// Token returns a token of the test issuer for sub with the given scopes and wlcg.groups /atlas.
func (g *Gateway) Token(sub, scopes string) (string, error) {
	now := time.Now()
	return jwt.Signed(g.signer).Claims(jwt.Claims{
		Issuer: Issuer, Subject: sub, Audience: jwt.Audience{Audience},
		Expiry: jwt.NewNumericDate(now.Add(time.Hour)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), IssuedAt: jwt.NewNumericDate(now),
	}).Claims(map[string]any{"wlcg.ver": "1.0", "scope": scopes, "wlcg.groups": []string{"/atlas"}}).Serialize()
}

// Requests is the number of requests the interface answered on a route (see arcrest metrics).
func (g *Gateway) Requests(route string) float64 {
	mfs, err := g.Metrics.Gather()
	if err != nil {
		return -1
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "kubehtc_gateway_arc_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == route {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}
