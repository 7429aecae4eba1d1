package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/config"
)

const (
	atlasIssuer = "https://atlas-auth.example.org/"
	cmsIssuer   = "https://cms-auth.example.org/"
	audience    = "https://gateway.example.org"
)

const testSite = `
audiences: [https://gateway.example.org]
issuers:
- {url: https://atlas-auth.example.org/, jwksFile: unused}
- {url: https://cms-auth.example.org/, jwksFile: unused}
vos:
- name: atlas
  namespace: atlas
  tokens: [{issuer: https://atlas-auth.example.org/, group: /atlas/pilot}]
- name: cms
  namespace: cms
  tokens: [{issuer: https://cms-auth.example.org/, subject: "pilot-.*"}]
  certificates: [{dn: "/DC=ch/DC=cern/OU=cms/.*"}]
queues: []
`

// issuerKey is a signing key of a test issuer.
type issuerKey struct {
	url    string
	signer jose.Signer
	public jose.JSONWebKey
}

func newIssuerKey(t *testing.T, url, kid string) *issuerKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return &issuerKey{url: url, signer: signer, public: jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}}
}

// token signs WLCG claims; mutate adjusts them.
func (k *issuerKey) token(t *testing.T, sub string, mutate func(*jwt.Claims, map[string]any)) string {
	t.Helper()
	now := time.Now()
	c := jwt.Claims{Issuer: k.url, Subject: sub, Audience: jwt.Audience{audience}, Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)), ID: "jti-1"}
	extra := map[string]any{"wlcg.ver": "1.0", "scope": "compute.create compute.read compute.modify compute.cancel", "wlcg.groups": []string{"/atlas", "/atlas/pilot"}}
	if mutate != nil {
		mutate(&c, extra)
	}
	raw, err := jwt.Signed(k.signer).Claims(c).Claims(extra).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func setup(t *testing.T) (*Authenticator, *issuerKey, *issuerKey) {
	t.Helper()
	site, err := config.Parse([]byte(testSite))
	if err != nil {
		t.Fatal(err)
	}
	atlas, cms := newIssuerKey(t, atlasIssuer, "a1"), newIssuerKey(t, cmsIssuer, "c1")
	a := NewWithKeys(site, map[string]*jose.JSONWebKeySet{
		atlasIssuer: {Keys: []jose.JSONWebKey{atlas.public}},
		cmsIssuer:   {Keys: []jose.JSONWebKey{cms.public}},
	})
	return a, atlas, cms
}

// call runs a unary call of method with the given authorization through the interceptor.
func call(a *Authenticator, method, authz string) (*Identity, error) {
	ctx := context.Background()
	if authz != "" {
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", authz))
	}
	scopes := func(m string) (string, bool) {
		return map[string]string{"/t/Submit": ScopeCreate, "/t/Get": ScopeRead, "/t/Cancel": ScopeCancel}[m], true
	}
	var got *Identity
	_, err := a.UnaryInterceptor(scopes)(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, _ any) (any, error) {
		got, _ = FromContext(ctx)
		return nil, nil
	})
	return got, err
}

func TestTokens(t *testing.T) {
	a, atlas, cms := setup(t)
	stranger := newIssuerKey(t, "https://evil.example.org/", "e1")
	impostor := newIssuerKey(t, atlasIssuer, "a1") // same issuer and kid, another key
	cases := []struct {
		name    string
		method  string
		authz   string
		code    codes.Code
		wantVO  string
		wantSub string
	}{
		{name: "valid atlas pilot token", method: "/t/Submit", authz: "Bearer " + atlas.token(t, "factory-1", nil), code: codes.OK, wantVO: "atlas", wantSub: "factory-1"},
		{name: "valid cms token by subject", method: "/t/Get", authz: "Bearer " + cms.token(t, "pilot-7", nil), code: codes.OK, wantVO: "cms", wantSub: "pilot-7"},
		{name: "missing", method: "/t/Get", code: codes.Unauthenticated},
		{name: "not bearer", method: "/t/Get", authz: "Basic dXNlcjpwdw==", code: codes.Unauthenticated},
		{name: "garbage", method: "/t/Get", authz: "Bearer not.a.jwt", code: codes.Unauthenticated},
		{name: "expired", method: "/t/Get", authz: "Bearer " + atlas.token(t, "f", func(c *jwt.Claims, _ map[string]any) {
			c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour))
		}), code: codes.Unauthenticated},
		{name: "no expiry", method: "/t/Get", authz: "Bearer " + atlas.token(t, "f", func(c *jwt.Claims, _ map[string]any) { c.Expiry = nil }), code: codes.Unauthenticated},
		{name: "not yet valid", method: "/t/Get", authz: "Bearer " + atlas.token(t, "f", func(c *jwt.Claims, _ map[string]any) {
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
		}), code: codes.Unauthenticated},
		{name: "wrong audience", method: "/t/Get", authz: "Bearer " + atlas.token(t, "f", func(c *jwt.Claims, _ map[string]any) {
			c.Audience = jwt.Audience{"https://other-ce.example.org"}
		}), code: codes.Unauthenticated},
		{name: "any audience not allowed by the site", method: "/t/Get", authz: "Bearer " + atlas.token(t, "f", func(c *jwt.Claims, _ map[string]any) {
			c.Audience = jwt.Audience{AnyAudience}
		}), code: codes.Unauthenticated},
		{name: "untrusted issuer", method: "/t/Get", authz: "Bearer " + stranger.token(t, "f", nil), code: codes.Unauthenticated},
		{name: "forged signature", method: "/t/Get", authz: "Bearer " + impostor.token(t, "f", nil), code: codes.Unauthenticated},
		{name: "issuer claim of another trusted issuer", method: "/t/Get", authz: "Bearer " + cms.token(t, "pilot-1", func(c *jwt.Claims, _ map[string]any) {
			c.Issuer = atlasIssuer
		}), code: codes.Unauthenticated},
		{name: "missing scope", method: "/t/Submit", authz: "Bearer " + atlas.token(t, "f", func(_ *jwt.Claims, x map[string]any) {
			x["scope"] = "compute.read"
		}), code: codes.PermissionDenied},
		{name: "no scopes at all", method: "/t/Get", authz: "Bearer " + atlas.token(t, "f", func(_ *jwt.Claims, x map[string]any) { delete(x, "scope") }), code: codes.PermissionDenied},
		{name: "not in a mapped group", method: "/t/Get", authz: "Bearer " + atlas.token(t, "f", func(_ *jwt.Claims, x map[string]any) {
			x["wlcg.groups"] = []string{"/atlas"}
		}), code: codes.PermissionDenied},
		{name: "subject not mapped", method: "/t/Get", authz: "Bearer " + cms.token(t, "user-1", nil), code: codes.PermissionDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := call(a, tc.method, tc.authz)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("code %s (%v), want %s", got, err, tc.code)
			}
			if tc.code != codes.OK {
				return
			}
			if id == nil || id.VO.Name != tc.wantVO || id.Owner.Subject != tc.wantSub {
				t.Fatalf("identity %+v, want VO %s subject %s", id, tc.wantVO, tc.wantSub)
			}
		})
	}
}

func TestCertificates(t *testing.T) {
	a, _, _ := setup(t)
	name := pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, Value: "ch"},
		{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, Value: "cern"},
		{Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "cms"},
		{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "Pilot Factory"},
	}}
	id, err := a.VerifyCertificate([]*x509.Certificate{{Subject: name}})
	if err != nil {
		t.Fatal(err)
	}
	want := kubehtcv1alpha1.GridJobOwner{DN: "/DC=ch/DC=cern/OU=cms/CN=Pilot Factory"}
	if diff := cmp.Diff(want, id.Owner); diff != "" || id.VO.Name != "cms" || !id.HasScope(ScopeCreate) {
		t.Errorf("owner (-want,+got):\n%s\nVO %s", diff, id.VO.Name)
	}
	other := pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "Someone"}}}
	if _, err := a.VerifyCertificate([]*x509.Certificate{{Subject: other}}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("unmapped certificate: %v, want PermissionDenied", err)
	}
	if _, err := a.VerifyCertificate(nil); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no certificate: %v, want Unauthenticated", err)
	}
}
