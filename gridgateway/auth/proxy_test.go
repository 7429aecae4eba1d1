package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubehtc/kubehtc/gridgateway/arcrest/arctest"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
)

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestVerifyProxyChain(t *testing.T) {
	now := time.Now()
	ca := must[*arctest.Cert](t)(arctest.NewCA(pkix.Name{CommonName: "Trusted CA"}, now.Add(-time.Hour), now.Add(24*time.Hour)))
	rogueCA := must[*arctest.Cert](t)(arctest.NewCA(pkix.Name{CommonName: "Trusted CA"}, now.Add(-time.Hour), now.Add(24*time.Hour))) // same name, other key
	user := must[*arctest.Cert](t)(ca.IssueUser(arctest.UserSubject("Jane Doe"), now.Add(-time.Hour), now.Add(12*time.Hour)))
	rogueUser := must[*arctest.Cert](t)(rogueCA.IssueUser(arctest.UserSubject("Jane Doe"), now.Add(-time.Hour), now.Add(12*time.Hour)))
	expiredUser := must[*arctest.Cert](t)(ca.IssueUser(arctest.UserSubject("Old User"), now.Add(-48*time.Hour), now.Add(-24*time.Hour)))
	proxy := must[*arctest.Cert](t)(user.Proxy(arctest.ProxyOptions{}))
	proxy2 := must[*arctest.Cert](t)(proxy.Proxy(arctest.ProxyOptions{})) // a delegated proxy of a proxy
	otherKey := must[*ecdsa.PrivateKey](t)(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	const wantDN = "/O=kubehtc test/OU=users/CN=Jane Doe"

	cases := []struct {
		name    string
		chain   func(t *testing.T) []*x509.Certificate
		wantErr string
	}{
		{name: "end-entity certificate alone", chain: func(*testing.T) []*x509.Certificate { return user.FullChain() }},
		{name: "RFC 3820 proxy", chain: func(*testing.T) []*x509.Certificate { return proxy.FullChain() }},
		{name: "proxy of a proxy", chain: func(*testing.T) []*x509.Certificate { return proxy2.FullChain() }},
		{name: "untrusted CA", chain: func(t *testing.T) []*x509.Certificate {
			return must[*arctest.Cert](t)(rogueUser.Proxy(arctest.ProxyOptions{})).FullChain()
		}, wantErr: "end-entity certificate"},
		{name: "expired end-entity certificate", chain: func(t *testing.T) []*x509.Certificate {
			return must[*arctest.Cert](t)(expiredUser.Proxy(arctest.ProxyOptions{NotBefore: now.Add(-47 * time.Hour), NotAfter: now.Add(-25 * time.Hour)})).FullChain()
		}, wantErr: "expired"},
		{name: "expired proxy", chain: func(t *testing.T) []*x509.Certificate {
			return must[*arctest.Cert](t)(user.Proxy(arctest.ProxyOptions{NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)})).FullChain()
		}, wantErr: "not valid at"},
		{name: "proxy not yet valid", chain: func(t *testing.T) []*x509.Certificate {
			return must[*arctest.Cert](t)(user.Proxy(arctest.ProxyOptions{NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)})).FullChain()
		}, wantErr: "not valid at"},
		{name: "subject is not the issuer plus one CN", chain: func(t *testing.T) []*x509.Certificate {
			subj := []pkix.AttributeTypeAndValue{{Type: []int{2, 5, 4, 10}, Value: "kubehtc test"}, {Type: []int{2, 5, 4, 3}, Value: "Someone Else"}, {Type: []int{2, 5, 4, 3}, Value: "123"}}
			return must[*arctest.Cert](t)(user.Proxy(arctest.ProxyOptions{Subject: subj})).FullChain()
		}, wantErr: "subject"},
		{name: "extra RDN is not a CN", chain: func(t *testing.T) []*x509.Certificate {
			subj := []pkix.AttributeTypeAndValue{{Type: []int{2, 5, 4, 10}, Value: "kubehtc test"}, {Type: []int{2, 5, 4, 11}, Value: "users"}, {Type: []int{2, 5, 4, 3}, Value: "Jane Doe"}, {Type: []int{2, 5, 4, 11}, Value: "proxy"}}
			return must[*arctest.Cert](t)(user.Proxy(arctest.ProxyOptions{Subject: subj})).FullChain()
		}, wantErr: "single CN"},
		{name: "forged signature", chain: func(t *testing.T) []*x509.Certificate {
			return must[*arctest.Cert](t)(user.Proxy(arctest.ProxyOptions{SignWith: otherKey})).FullChain()
		}, wantErr: "signature"},
		{name: "legacy proxy without proxyCertInfo below a proxy", chain: func(t *testing.T) []*x509.Certificate {
			p := must[*arctest.Cert](t)(proxy.Proxy(arctest.ProxyOptions{NoProxyCertInfo: true}))
			return p.FullChain()
		}, wantErr: "end-entity certificate"},
		{name: "proxy of another user's chain", chain: func(t *testing.T) []*x509.Certificate {
			other := must[*arctest.Cert](t)(ca.IssueUser(arctest.UserSubject("Mallory"), now.Add(-time.Hour), now.Add(time.Hour)))
			p := must[*arctest.Cert](t)(proxy.Proxy(arctest.ProxyOptions{}))
			return []*x509.Certificate{p.Cert, proxy.Cert, other.Cert} // proxy chain spliced onto Mallory's EEC
		}, wantErr: "not the subject of the certificate above"},
		{name: "proxies only", chain: func(t *testing.T) []*x509.Certificate { return []*x509.Certificate{proxy2.Cert, proxy.Cert} }, wantErr: "no end-entity"},
		{name: "empty", chain: func(t *testing.T) []*x509.Certificate { return nil }, wantErr: "no certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eec, err := auth.VerifyProxyChain(tc.chain(t), roots, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, auth.ErrUntrusted) {
					t.Fatalf("error %v, want one mentioning %q wrapping ErrUntrusted", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := auth.OpenSSLDN(eec); got != wantDN {
				t.Errorf("identity %q, want the EEC's DN %q", got, wantDN)
			}
		})
	}
}

func TestLoadCADir(t *testing.T) {
	now := time.Now()
	ca := must[*arctest.Cert](t)(arctest.NewCA(pkix.Name{CommonName: "Dir CA"}, now.Add(-time.Hour), now.Add(time.Hour)))
	dir := t.TempDir()
	if err := arctest.WriteCADir(dir, ca); err != nil {
		t.Fatal(err)
	}
	// A stray certificate that is not behind a hash link is not a trust anchor.
	stray := must[*arctest.Cert](t)(arctest.NewCA(pkix.Name{CommonName: "Stray CA"}, now.Add(-time.Hour), now.Add(time.Hour)))
	if err := os.WriteFile(filepath.Join(dir, "stray.pem"), stray.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	pool, n, err := auth.LoadCADir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 { // <subject_hash>.0 and <subject_hash_old>.0, both to the same CA
		t.Errorf("loaded %d certificates, want 2 (two links to one CA)", n)
	}
	for _, c := range []struct {
		ca   *arctest.Cert
		want bool
	}{{ca, true}, {stray, false}} {
		u := must[*arctest.Cert](t)(c.ca.IssueUser(arctest.UserSubject("U"), now.Add(-time.Minute), now.Add(time.Hour)))
		_, err := auth.VerifyProxyChain(u.FullChain(), pool, now)
		if (err == nil) != c.want {
			t.Errorf("user of %s: error %v, trusted want %v", c.ca.Cert.Subject.CommonName, err, c.want)
		}
	}
	if _, _, err := auth.LoadCADir(t.TempDir()); err == nil {
		t.Error("an empty CA directory loaded without error")
	}
}
