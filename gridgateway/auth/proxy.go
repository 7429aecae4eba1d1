package auth

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// OIDProxyCertInfo is the RFC 3820 proxyCertInfo extension (id-pe-proxyCertInfo).
var OIDProxyCertInfo = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 14}

// oidCommonName is the CN attribute type.
var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// ErrUntrusted is wrapped by every proxy-chain verification failure.
var ErrUntrusted = errors.New("untrusted certificate chain")

// hashLink matches the names of an IGTF CA directory's certificate links: <8 hex digits>.<n>.
var hashLink = regexp.MustCompile(`^[0-9a-f]{8}\.[0-9]+$`)

// LoadCADir reads the trust anchors of a CA directory in the IGTF layout (/etc/grid-security/certificates):
// every certificate reached through a hash link <hash>.<n>. Other files (signing policies, namespaces,
// CRLs <hash>.r<n>, the .pem originals) are skipped; the links point at the same certificates.
func LoadCADir(dir string) (*x509.CertPool, int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("CA directory: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for _, e := range entries {
		if !hashLink.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, 0, fmt.Errorf("CA directory: %w", err)
		}
		certs, err := ParsePEMCertificates(b)
		if err != nil {
			return nil, 0, fmt.Errorf("CA directory %s: %w", e.Name(), err)
		}
		for _, c := range certs {
			pool.AddCert(c)
			n++
		}
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("CA directory %s: no certificates behind <hash>.<n> links", dir)
	}
	return pool, n, nil
}

// ParsePEMCertificates returns the certificates of a PEM bundle in order, skipping other blocks (keys).
func ParsePEMCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// IsProxy reports whether a certificate is an RFC 3820 proxy certificate (it carries proxyCertInfo).
func IsProxy(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDProxyCertInfo) {
			return true
		}
	}
	return false
}

// VerifyProxyChain verifies a client chain, leaf first, that may start with RFC 3820 proxy certificates
// (Go's crypto/x509 does not verify those): the first certificate that is not a proxy is the end-entity
// certificate (EEC); it must verify against roots (intermediate CAs may follow it in the chain). Then each
// proxy, from the EEC down to the leaf, must carry proxyCertInfo, be signed by the certificate above it,
// be valid at now, not be a CA, and have as subject its issuer's subject plus one CN. It returns the EEC,
// whose subject is the caller's identity.
func VerifyProxyChain(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) (*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: no certificate", ErrUntrusted)
	}
	if roots == nil {
		return nil, fmt.Errorf("%w: no trusted CAs configured", ErrUntrusted)
	}
	eecIdx := -1
	for i, c := range chain {
		if !IsProxy(c) {
			eecIdx = i
			break
		}
	}
	if eecIdx < 0 {
		return nil, fmt.Errorf("%w: the chain has proxies only, no end-entity certificate", ErrUntrusted)
	}
	eec := chain[eecIdx]
	inter := x509.NewCertPool()
	for _, c := range chain[eecIdx+1:] {
		if IsProxy(c) {
			return nil, fmt.Errorf("%w: proxy %q above the end-entity certificate", ErrUntrusted, OpenSSLDN(c))
		}
		inter.AddCert(c)
	}
	if _, err := eec.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%w: end-entity certificate %q: %w", ErrUntrusted, OpenSSLDN(eec), err)
	}
	for i := eecIdx - 1; i >= 0; i-- {
		if err := checkProxy(chain[i], chain[i+1], now); err != nil {
			return nil, fmt.Errorf("%w: proxy %q: %w", ErrUntrusted, OpenSSLDN(chain[i]), err)
		}
	}
	return eec, nil
}

// checkProxy checks one proxy certificate against the certificate that issued it.
func checkProxy(p, issuer *x509.Certificate, now time.Time) error {
	if !IsProxy(p) {
		return errors.New("not an RFC 3820 proxy (no proxyCertInfo) below a proxy")
	}
	if now.Before(p.NotBefore) || now.After(p.NotAfter) {
		return fmt.Errorf("not valid at %s (valid %s to %s)", now.UTC().Format(time.RFC3339), p.NotBefore.UTC().Format(time.RFC3339), p.NotAfter.UTC().Format(time.RFC3339))
	}
	if p.BasicConstraintsValid && p.IsCA {
		return errors.New("a proxy must not be a CA")
	}
	if issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("issuer %q may not sign (no digitalSignature key usage)", OpenSSLDN(issuer))
	}
	if !bytes.Equal(p.RawIssuer, issuer.RawSubject) {
		return fmt.Errorf("issuer %q is not the subject of the certificate above, %q", issuerDN(p), OpenSSLDN(issuer))
	}
	// CheckSignatureFrom insists that the parent is a CA; a proxy's parent never is.
	if err := issuer.CheckSignature(p.SignatureAlgorithm, p.RawTBSCertificate, p.Signature); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	var subj, iss pkix.RDNSequence
	if rest, err := asn1.Unmarshal(p.RawSubject, &subj); err != nil || len(rest) > 0 {
		return errors.New("malformed subject")
	}
	if rest, err := asn1.Unmarshal(issuer.RawSubject, &iss); err != nil || len(rest) > 0 {
		return errors.New("malformed issuer subject")
	}
	if len(subj) != len(iss)+1 {
		return fmt.Errorf("subject must be the issuer's subject plus one CN, has %d RDNs for the issuer's %d", len(subj), len(iss))
	}
	for i := range iss {
		if !rdnEqual(subj[i], iss[i]) {
			return fmt.Errorf("subject differs from the issuer's subject at RDN %d", i+1)
		}
	}
	last := subj[len(subj)-1]
	if len(last) != 1 || !last[0].Type.Equal(oidCommonName) {
		return errors.New("the last RDN of a proxy's subject must be a single CN")
	}
	return nil
}

func rdnEqual(a, b pkix.RelativeDistinguishedNameSET) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Type.Equal(b[i].Type) || fmt.Sprint(a[i].Value) != fmt.Sprint(b[i].Value) {
			return false
		}
	}
	return true
}

func issuerDN(c *x509.Certificate) string {
	return OpenSSLDN(&x509.Certificate{RawSubject: c.RawIssuer, Subject: c.Issuer})
}

// VerifyProxyCertificate verifies a client chain that may hold RFC 3820 proxies against roots (see
// VerifyProxyChain) and maps the end-entity certificate's DN — and, with a.VOMS, the FQANs of the chain's
// verified VOMS attribute certificates — to a VO. An attribute certificate that does not verify refuses
// the caller. Errors are gRPC status errors (Unauthenticated, PermissionDenied) like the rest of the
// package.
func (a *Authenticator) VerifyProxyCertificate(chain []*x509.Certificate, roots *x509.CertPool) (*Identity, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	t := now()
	eec, err := VerifyProxyChain(chain, roots, t)
	if err != nil {
		return nil, unauthenticated("%v", err)
	}
	var fqans []string
	if a.VOMS != nil {
		// Only the verified part of the chain: the proxies and the EEC.
		verified := chain
		for i, c := range chain {
			if c == eec {
				verified = chain[:i+1]
				break
			}
		}
		if fqans, err = a.VOMS.FQANs(verified, t); err != nil {
			return nil, unauthenticated("%v", err)
		}
	}
	return a.certificateIdentity(OpenSSLDN(eec), fqans)
}
