package arcrest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kubehtc/kubehtc/gridgateway/arcrest/arctest"
)

func resourceMust(s string) resource.Quantity { return resource.MustParse(s) }

// signer signs delegation CSRs like an ARC client: a proxy under its own proxy.
type signer struct {
	proxy *arctest.Cert
	chain []*x509.Certificate
}

func (s *signer) proxyFor(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	p, err := s.proxy.ProxyForPublicKey(pub, arctest.ProxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Cert.Raw
}

// certs is the unit tests' PKI: a trusted CA with users Jane Doe and Other User (both of VO atlas), a
// rogue CA, and a token issuer.
type certs struct {
	roots                                           *x509.CertPool
	userProxy, otherProxy, rogueProxy, expiredProxy []*x509.Certificate
	userSigner, otherSigner                         *signer
	jwks                                            *jose.JSONWebKeySet
	tokenSigner                                     jose.Signer
}

var (
	certsOnce sync.Once
	certsVal  *certs
	certsErr  error
)

// testCerts builds the PKI once per test binary (RSA keys take a while).
func testCerts(t *testing.T) *certs {
	t.Helper()
	certsOnce.Do(func() { certsVal, certsErr = buildCerts() })
	if certsErr != nil {
		t.Fatal(certsErr)
	}
	return certsVal
}

func buildCerts() (*certs, error) {
	now := time.Now()
	c := &certs{roots: x509.NewCertPool()}
	ca, err := arctest.NewCA(pkix.Name{CommonName: "Unit CA"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	rogue, err := arctest.NewCA(pkix.Name{CommonName: "Unit CA"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	c.roots.AddCert(ca.Cert)
	mk := func(ca *arctest.Cert, cn string, o arctest.ProxyOptions) (*arctest.Cert, error) {
		u, err := ca.IssueUser(arctest.UserSubject(cn), now.Add(-time.Hour), now.Add(12*time.Hour))
		if err != nil {
			return nil, err
		}
		return u.Proxy(o)
	}
	up, err := mk(ca, "Jane Doe", arctest.ProxyOptions{})
	if err != nil {
		return nil, err
	}
	op, err := mk(ca, "Other User", arctest.ProxyOptions{})
	if err != nil {
		return nil, err
	}
	rp, err := mk(rogue, "Jane Doe", arctest.ProxyOptions{})
	if err != nil {
		return nil, err
	}
	ep, err := mk(ca, "Jane Doe", arctest.ProxyOptions{NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Minute)})
	if err != nil {
		return nil, err
	}
	c.userProxy, c.otherProxy, c.rogueProxy, c.expiredProxy = up.FullChain(), op.FullChain(), rp.FullChain(), ep.FullChain()
	c.userSigner = &signer{proxy: up, chain: up.FullChain()}
	c.otherSigner = &signer{proxy: op, chain: op.FullChain()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c.jwks = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k", Algorithm: string(jose.ES256), Use: "sig"}}}
	c.tokenSigner, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k"}}, nil)
	return c, err
}

func (c *certs) token(t *testing.T, sub, scope string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.Signed(c.tokenSigner).Claims(jwt.Claims{Issuer: "https://issuer.test/", Subject: sub, Audience: jwt.Audience{"https://ce.test/arex"},
		Expiry: jwt.NewNumericDate(now.Add(time.Hour)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute))}).
		Claims(map[string]any{"scope": scope}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
