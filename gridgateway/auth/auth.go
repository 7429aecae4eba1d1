// Package auth authenticates grid gateway callers and maps them to a VO: WLCG JWT bearer tokens verified
// against the configured issuers' keys (signature, iss, aud, exp, nbf; compute.* scopes per call) and
// mTLS client certificates (subject DN). Its errors are plain (*Error): ErrUnauthenticated when the caller
// cannot be identified, ErrPermissionDenied when it can but may not do what it asks; each front door maps
// them in one place (gRPC: Error.GRPCStatus; ARC REST: its statusOf).
package auth

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/config"
)

// WLCG compute scopes (WLCG Common JWT Profile).
const (
	ScopeRead   = "compute.read"
	ScopeModify = "compute.modify"
	ScopeCreate = "compute.create"
	ScopeCancel = "compute.cancel"
	// AnyAudience is the WLCG audience that means "any service".
	AnyAudience = "https://wlcg.cern.ch/jwt/v1/any"
)

// signingAlgorithms are the algorithms a token may be signed with (WLCG: RS256 and ES256; a few more).
var signingAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.PS256}

// Identity is an authenticated caller.
type Identity struct {
	// Owner is the identity recorded on the caller's GridJobs.
	Owner kubehtcv1alpha1.GridJobOwner
	// VO is the caller's VO.
	VO *config.VO
	// Scopes granted by the token; nil for a certificate, which carries no scopes and may do everything.
	Scopes []string
	// Groups are the token's wlcg.groups, or the certificate's FQANs.
	Groups []string
}

// HasScope reports whether the identity may do what scope covers.
func (id *Identity) HasScope(scope string) bool {
	return id.Scopes == nil || slices.Contains(id.Scopes, scope)
}

// Authenticator verifies callers against the site configuration.
type Authenticator struct {
	site *config.Site
	keys *keyStore
	// Now is the clock for exp/nbf checks; nil means time.Now.
	Now func() time.Time
	// Leeway tolerates clock skew in exp/nbf checks.
	Leeway time.Duration
	// VOMS verifies the VOMS attribute certificates of proxy chains (VerifyProxyCertificate), whose FQANs
	// then take part in the VO mapping; nil ignores them (fqan rules match nothing).
	VOMS *VOMSVerifier
}

// New returns an Authenticator that loads each issuer's keys from its JWKS file or URL (URLs are fetched
// now and again when a token names an unknown key, at most once a minute).
func New(ctx context.Context, site *config.Site) (*Authenticator, error) {
	ks, err := loadKeys(ctx, site.Issuers)
	if err != nil {
		return nil, err
	}
	return &Authenticator{site: site, keys: ks, Leeway: 30 * time.Second}, nil
}

// NewWithKeys returns an Authenticator with the given key sets by issuer URL (tests, static keys).
func NewWithKeys(site *config.Site, keys map[string]*jose.JSONWebKeySet) *Authenticator {
	return &Authenticator{site: site, keys: staticKeys(keys), Leeway: 30 * time.Second}
}

type wlcgClaims struct {
	Scope  string   `json:"scope"`
	Groups []string `json:"wlcg.groups"`
}

// VerifyToken checks a bearer token and maps its owner to a VO.
func (a *Authenticator) VerifyToken(ctx context.Context, raw string) (*Identity, error) {
	tok, err := jwt.ParseSigned(raw, signingAlgorithms)
	if err != nil {
		return nil, unauthenticated("malformed bearer token: %v", err)
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, unauthenticated("malformed bearer token claims: %v", err)
	}
	keys, ok := a.keys.forIssuer(ctx, unverified.Issuer, tok.Headers[0].KeyID)
	if !ok {
		return nil, unauthenticated("token issuer %q is not trusted", unverified.Issuer)
	}
	var claims jwt.Claims
	var extra wlcgClaims
	verified := false
	for _, k := range keys {
		if err := tok.Claims(k.Key, &claims, &extra); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, unauthenticated("token signature does not verify with the keys of issuer %q", unverified.Issuer)
	}
	if claims.Expiry == nil {
		return nil, unauthenticated("token has no expiry (exp)")
	}
	if claims.Subject == "" {
		return nil, unauthenticated("token has no subject (sub)")
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	auds := slices.Clone(a.site.Audiences)
	if a.site.AllowAnyAudience {
		auds = append(auds, AnyAudience)
	}
	err = claims.ValidateWithLeeway(jwt.Expected{Issuer: unverified.Issuer, AnyAudience: auds, Time: now()}, a.Leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, unauthenticated("token expired at %s", claims.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, unauthenticated("token not valid before %s", claims.NotBefore.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, unauthenticated("token audience %v is not this gateway (%v)", []string(claims.Audience), auds)
	case err != nil:
		return nil, unauthenticated("invalid token: %v", err)
	}
	id := &Identity{
		Owner:  kubehtcv1alpha1.GridJobOwner{Issuer: claims.Issuer, Subject: claims.Subject},
		Scopes: strings.Fields(extra.Scope),
		Groups: extra.Groups,
	}
	if id.Scopes == nil {
		id.Scopes = []string{} // a token without scopes may do nothing, unlike a certificate
	}
	vo, ok := a.site.VOForToken(config.TokenClaims{Issuer: claims.Issuer, Subject: claims.Subject, Groups: extra.Groups})
	if !ok {
		return nil, permissionDenied("subject %q of issuer %q (groups %v) is not mapped to any VO", claims.Subject, claims.Issuer, extra.Groups)
	}
	id.VO = vo
	return id, nil
}

// VerifyCertificate maps a verified client certificate chain (leaf first) to an identity.
func (a *Authenticator) VerifyCertificate(chain []*x509.Certificate) (*Identity, error) {
	if len(chain) == 0 {
		return nil, unauthenticated("no verified client certificate")
	}
	return a.certificateIdentity(OpenSSLDN(chain[0]), nil)
}

// certificateIdentity maps a verified DN and verified VOMS FQANs to an identity.
func (a *Authenticator) certificateIdentity(dn string, fqans []string) (*Identity, error) {
	vo, ok := a.site.VOForCertificate(config.CertificateIdentity{DN: dn, FQANs: fqans})
	if !ok {
		if len(fqans) > 0 {
			return nil, permissionDenied("certificate %q with FQANs %v is not mapped to any VO", dn, fqans)
		}
		return nil, permissionDenied("certificate %q is not mapped to any VO", dn)
	}
	return &Identity{Owner: kubehtcv1alpha1.GridJobOwner{DN: dn}, VO: vo, Groups: fqans}, nil
}

// Authenticate identifies the caller of a gRPC call: a bearer token in the authorization metadata, else a
// verified TLS client certificate.
func (a *Authenticator) Authenticate(ctx context.Context) (*Identity, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if vals := md.Get("authorization"); len(vals) > 0 {
			raw, found := strings.CutPrefix(vals[0], "Bearer ")
			if !found {
				return nil, unauthenticated("authorization metadata is not a Bearer token")
			}
			return a.VerifyToken(ctx, strings.TrimSpace(raw))
		}
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			return a.VerifyCertificate(ti.State.VerifiedChains[0])
		}
	}
	return nil, unauthenticated("no bearer token and no verified client certificate")
}

// shortNames are the attribute names of the OpenSSL one-line DN form grid sites use.
var shortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"0.9.2342.19200300.100.1.25": "DC", "1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.1": "UID",
}

// OpenSSLDN renders a certificate's subject in the slash form of grid-mapfiles, in certificate order:
// /DC=ch/DC=cern/OU=Users/CN=Jane Doe. It reads the raw subject, because the parsed pkix.Name drops
// attributes it has no field for (DC, UID).
func OpenSSLDN(cert *x509.Certificate) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(cert.RawSubject, &rdns); err != nil || len(rest) > 0 {
		rdns = cert.Subject.ToRDNSequence()
	}
	var b strings.Builder
	for _, rdn := range rdns {
		for _, atv := range rdn {
			name, ok := shortNames[atv.Type.String()]
			if !ok {
				name = asn1.ObjectIdentifier(atv.Type).String()
			}
			fmt.Fprintf(&b, "/%s=%v", name, atv.Value)
		}
	}
	return b.String()
}
