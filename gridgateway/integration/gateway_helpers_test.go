package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/grpcapi"
	"github.com/kubehtc/kubehtc/gridgateway/session"
)

const (
	atlasIssuer = "https://atlas-auth.example.org/"
	cmsIssuer   = "https://cms-auth.example.org/"
	audience    = "https://gateway.example.org"
)

// siteYAML maps atlas and cms tokens to the VOs atlas-gw and cms-gw (namespaces of the same names).
const siteYAML = `
audiences: [https://gateway.example.org]
issuers:
- {url: https://atlas-auth.example.org/, jwksFile: unused}
- {url: https://cms-auth.example.org/, jwksFile: unused}
vos:
- name: atlas-gw
  namespace: atlas-gw
  tokens: [{issuer: https://atlas-auth.example.org/, group: /atlas/pilot}]
- name: cms-gw
  namespace: cms-gw
  tokens: [{issuer: https://cms-auth.example.org/}]
queues:
- {name: atlas-prod, vos: [atlas-gw], image: "registry.example.org/atlas/pilot:1", defaultWallTimeSeconds: 3600}
- {name: cms-prod, vos: [cms-gw], image: "registry.example.org/cms/pilot:1", defaultWallTimeSeconds: 3600}
runtimeEnvironments:
- {name: APPS/HEP/ATLAS-SITE, cvmfs: [atlas.cern.ch, sft.cern.ch]}
- {name: ENV/PROXY, mountCredential: true}
`

// issuer signs tokens for one test issuer.
type issuer struct {
	url    string
	signer jose.Signer
	public jose.JSONWebKey
}

func newIssuer(t testing.TB, url string) *issuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{url: url, signer: signer, public: jose.JSONWebKey{Key: &k.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}}
}

func (is *issuer) token(t testing.TB, sub, scope string) string {
	t.Helper()
	now := time.Now()
	raw, err := jwt.Signed(is.signer).Claims(jwt.Claims{
		Issuer: is.url, Subject: sub, Audience: jwt.Audience{audience},
		Expiry: jwt.NewNumericDate(now.Add(time.Hour)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), IssuedAt: jwt.NewNumericDate(now),
	}).Claims(map[string]any{"wlcg.ver": "1.0", "scope": scope, "wlcg.groups": []string{"/atlas/pilot"}}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// allScopes are the four WLCG compute scopes.
const allScopes = "compute.create compute.read compute.modify compute.cancel"

// gateway is a gateway served on a loopback address that can be stopped and started again on the same
// address: each start is a new server with nothing in memory from the previous one.
type gateway struct {
	t    testing.TB
	addr string
	site *config.Site
	auth *auth.Authenticator

	// outputs is the session store of ListOutputs/GetOutput (nil: none).
	outputs session.Outputs

	mu   sync.Mutex
	grpc *grpc.Server
	done chan struct{}
}

func startGateway(t testing.TB, issuers ...*issuer) *gateway {
	t.Helper()
	return startGatewayWithOutputs(t, nil, issuers...)
}

// startGatewayWithOutputs starts a gateway whose output calls read outputs.
func startGatewayWithOutputs(t testing.TB, outputs session.Outputs, issuers ...*issuer) *gateway {
	t.Helper()
	site, err := config.Parse([]byte(siteYAML))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]*jose.JSONWebKeySet{}
	for _, is := range issuers {
		keys[is.url] = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{is.public}}
	}
	g := &gateway{t: t, addr: "127.0.0.1:0", site: site, auth: auth.NewWithKeys(site, keys), outputs: outputs}
	g.start()
	t.Cleanup(g.stop)
	return g
}

func (g *gateway) start() {
	g.t.Helper()
	var lis net.Listener
	var err error
	for range 50 { // the port of a stopped server may take a moment to be free again
		if lis, err = net.Listen("tcp", g.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		g.t.Fatal(err)
	}
	g.addr = lis.Addr().String()
	s := grpcapi.NewGRPCServer(&grpcapi.Server{Client: kc, Site: g.site, Outputs: g.outputs}, g.auth, nil, nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	g.mu.Lock()
	g.grpc, g.done = s, done
	g.mu.Unlock()
}

// stop kills the server: open connections close and in-flight calls are cancelled.
func (g *gateway) stop() {
	g.mu.Lock()
	s, done := g.grpc, g.done
	g.grpc = nil
	g.mu.Unlock()
	if s != nil {
		s.Stop()
		<-done
	}
}

// bearer is per-call token credentials (over plaintext: the test gateway has no TLS).
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

// client connects to the gateway with a token ("" for none).
func (g *gateway) client(token string) gatewayv1.GatewayClient {
	g.t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	conn, err := grpc.NewClient(g.addr, opts...)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { conn.Close() })
	return gatewayv1.NewGatewayClient(conn)
}
