package auth

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// VOMS attribute certificates (RFC 5755 attribute certificates as the VOMS servers issue them) carried by
// RFC 3820 proxies.
var (
	// OIDVOMSACSeq is the proxy extension holding a sequence of VOMS attribute certificates.
	OIDVOMSACSeq = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 8005, 100, 100, 5}
	// OIDVOMSAttributes is the AC attribute holding the FQANs (IetfAttrSyntax, octet strings).
	OIDVOMSAttributes = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 8005, 100, 100, 4}
	// OIDVOMSCerts is the AC extension holding the VOMS server's certificate chain.
	OIDVOMSCerts = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 8005, 100, 100, 10}
)

// ErrVOMS marks an attribute certificate that does not verify.
var ErrVOMS = errors.New("VOMS attribute certificate refused")

// MaxVOMSACs bounds the attribute certificates read from one proxy chain.
const MaxVOMSACs = 8

// Attribute certificate structures (RFC 5755 §4.1), as much as VOMS uses.
type attributeCertificate struct {
	Info               asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
}

type acValidity struct {
	NotBefore time.Time `asn1:"generalized"`
	NotAfter  time.Time `asn1:"generalized"`
}

type acAttribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

type acInfo struct {
	Version    int
	Holder     asn1.RawValue
	Issuer     asn1.RawValue
	Signature  pkix.AlgorithmIdentifier
	Serial     *big.Int
	Validity   acValidity
	Attributes []acAttribute
	IssuerUID  asn1.BitString   `asn1:"optional"`
	Extensions []pkix.Extension `asn1:"optional"`
}

// issuerSerial is the holder's baseCertificateID: the holder certificate's issuer and serial.
type issuerSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
	UID    asn1.BitString `asn1:"optional"`
}

// VOMSAttributes are the verified attributes of one attribute certificate.
type VOMSAttributes struct {
	// VO is the VO name the AC's policy authority names.
	VO string
	// Server is the VOMS server's host name (policy authority).
	Server string
	// IssuerDN is the VOMS server certificate's DN.
	IssuerDN string
	// FQANs are the VOMS FQANs, normalised (/atlas/Role=NULL/Capability=NULL is /atlas).
	FQANs []string
	// NotAfter is the end of the AC's validity.
	NotAfter time.Time
}

// VOMSVerifier verifies VOMS attribute certificates. The VOMS servers trusted for a VO are listed in the
// vomsdir layout: <Dir>/<vo>/<host>.lsc holds the server certificate's subject DN on its first line and
// its issuing CA's DN on the second (OpenSSL slash form). The server certificate itself travels in the AC
// (its certs extension) and must verify against Roots (the IGTF CA directory) with that issuer.
type VOMSVerifier struct {
	// Dir is the vomsdir.
	Dir string
	// Roots are the trusted CAs of VOMS server certificates.
	Roots *x509.CertPool
}

// FQANs returns the FQANs of the VOMS attribute certificates of a verified proxy chain (leaf first, up to
// the end-entity certificate), each verified with Verify. A chain without ACs has none; an AC that does
// not verify is an error (ErrVOMS), never silently accepted.
func (v *VOMSVerifier) FQANs(chain []*x509.Certificate, now time.Time) ([]string, error) {
	var out []string
	n := 0
	for _, c := range chain {
		for _, ext := range c.Extensions {
			if !ext.Id.Equal(OIDVOMSACSeq) {
				continue
			}
			var acs []asn1.RawValue
			if rest, err := asn1.Unmarshal(ext.Value, &acs); err != nil || len(rest) > 0 {
				return nil, fmt.Errorf("%w: malformed attribute certificate sequence in %q", ErrVOMS, OpenSSLDN(c))
			}
			for _, raw := range acs {
				if n++; n > MaxVOMSACs {
					return nil, fmt.Errorf("%w: more than %d attribute certificates", ErrVOMS, MaxVOMSACs)
				}
				attrs, err := v.Verify(raw.FullBytes, chain, now)
				if err != nil {
					return nil, err
				}
				out = append(out, attrs.FQANs...)
			}
		}
	}
	return out, nil
}

// Verify checks one DER attribute certificate: its holder is a certificate of holderChain, its VOMS server
// is listed in the vomsdir for the VO it names, the server certificate it carries has the listed DN and
// issuer and verifies against the roots, the AC's signature is that server's, and now lies within its
// validity. It returns the AC's attributes.
func (v *VOMSVerifier) Verify(der []byte, holderChain []*x509.Certificate, now time.Time) (*VOMSAttributes, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrVOMS, fmt.Sprintf(format, args...))
	}
	var ac attributeCertificate
	if rest, err := asn1.Unmarshal(der, &ac); err != nil || len(rest) > 0 {
		return nil, fail("malformed attribute certificate")
	}
	var info acInfo
	if rest, err := asn1.Unmarshal(ac.Info.FullBytes, &info); err != nil || len(rest) > 0 {
		return nil, fail("malformed attribute certificate info")
	}
	if info.Version != 1 {
		return nil, fail("version %d, want v2 (1)", info.Version)
	}
	if !info.Signature.Algorithm.Equal(ac.SignatureAlgorithm.Algorithm) {
		return nil, fail("inner and outer signature algorithms differ")
	}
	alg, ok := signatureAlgorithms[ac.SignatureAlgorithm.Algorithm.String()]
	if !ok {
		return nil, fail("unsupported signature algorithm %s", ac.SignatureAlgorithm.Algorithm)
	}
	attrs := &VOMSAttributes{NotAfter: info.Validity.NotAfter}

	// Issuer: v2Form [0] { issuerName GeneralNames }.
	if info.Issuer.Class != asn1.ClassContextSpecific || info.Issuer.Tag != 0 {
		return nil, fail("issuer is not in the v2 form")
	}
	var issuerNames asn1.RawValue
	if _, err := asn1.Unmarshal(info.Issuer.Bytes, &issuerNames); err != nil {
		return nil, fail("malformed issuer")
	}
	acIssuer, err := directoryName(issuerNames.FullBytes)
	if err != nil {
		return nil, fail("issuer: %v", err)
	}
	attrs.IssuerDN = acIssuer

	// Holder: baseCertificateID [0] { issuer GeneralNames, serial }.
	var holderItems []asn1.RawValue
	if rest, err := asn1.Unmarshal(info.Holder.FullBytes, &holderItems); err != nil || len(rest) > 0 {
		return nil, fail("malformed holder")
	}
	var base *issuerSerial
	for _, it := range holderItems {
		if it.Class == asn1.ClassContextSpecific && it.Tag == 0 {
			var is issuerSerial
			seq := append([]byte{0x30}, it.FullBytes[1:]...) // the same content under the SEQUENCE tag
			if rest, err := asn1.Unmarshal(seq, &is); err != nil || len(rest) > 0 || is.Serial == nil {
				return nil, fail("malformed holder baseCertificateID")
			}
			base = &is
		}
	}
	if base == nil {
		return nil, fail("holder has no baseCertificateID")
	}
	holderIssuer, err := directoryName(base.Issuer.FullBytes)
	if err != nil {
		return nil, fail("holder issuer: %v", err)
	}
	held := false
	for _, c := range holderChain {
		if c.SerialNumber.Cmp(base.Serial) == 0 && issuerDN(c) == holderIssuer {
			held = true
			break
		}
	}
	if !held {
		return nil, fail("its holder (serial %s of %q) is not a certificate of the client's chain", base.Serial, holderIssuer)
	}

	// Attributes: the FQANs and the policy authority naming the VO and server.
	for _, a := range info.Attributes {
		if !a.Type.Equal(OIDVOMSAttributes) {
			continue
		}
		for _, val := range a.Values {
			vo, host, fqans, err := parseIetfAttr(val.FullBytes)
			if err != nil {
				return nil, fail("attributes: %v", err)
			}
			if attrs.VO != "" && (vo != attrs.VO || host != attrs.Server) {
				return nil, fail("attributes name two policy authorities")
			}
			attrs.VO, attrs.Server = vo, host
			attrs.FQANs = append(attrs.FQANs, fqans...)
		}
	}
	if attrs.VO == "" {
		return nil, fail("no VOMS attributes")
	}
	for _, f := range attrs.FQANs {
		if f != "/"+attrs.VO && !strings.HasPrefix(f, "/"+attrs.VO+"/") {
			return nil, fail("FQAN %q is outside VO %s", f, attrs.VO)
		}
	}

	// Trust: the vomsdir entry of the VO and server.
	serverDN, caDN, err := v.lsc(attrs.VO, attrs.Server)
	if err != nil {
		return nil, fail("%v", err)
	}
	if acIssuer != serverDN {
		return nil, fail("issuer %q is not the VOMS server %q listed for %s/%s", acIssuer, serverDN, attrs.VO, attrs.Server)
	}
	signer, err := v.serverCertificate(info.Extensions, serverDN, caDN, now)
	if err != nil {
		return nil, fail("%v", err)
	}
	if err := signer.CheckSignature(alg, ac.Info.FullBytes, ac.Signature.RightAlign()); err != nil {
		return nil, fail("signature does not verify with the certificate of %q: %v", serverDN, err)
	}
	if now.Before(info.Validity.NotBefore) || now.After(info.Validity.NotAfter) {
		return nil, fail("not valid at %s (valid %s to %s)", now.UTC().Format(time.RFC3339),
			info.Validity.NotBefore.UTC().Format(time.RFC3339), info.Validity.NotAfter.UTC().Format(time.RFC3339))
	}
	return attrs, nil
}

var signatureAlgorithms = map[string]x509.SignatureAlgorithm{
	"1.2.840.113549.1.1.11": x509.SHA256WithRSA,
	"1.2.840.113549.1.1.12": x509.SHA384WithRSA,
	"1.2.840.113549.1.1.13": x509.SHA512WithRSA,
	"1.2.840.10045.4.3.2":   x509.ECDSAWithSHA256,
	"1.2.840.10045.4.3.3":   x509.ECDSAWithSHA384,
	"1.2.840.10045.4.3.4":   x509.ECDSAWithSHA512,
}

// directoryName reads GeneralNames (DER) and returns its directoryName in the OpenSSL slash form.
func directoryName(der []byte) (string, error) {
	var names []asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &names); err != nil || len(rest) > 0 {
		return "", errors.New("malformed general names")
	}
	for _, n := range names {
		if n.Class == asn1.ClassContextSpecific && n.Tag == 4 { // directoryName [4] EXPLICIT Name
			var name asn1.RawValue
			if rest, err := asn1.Unmarshal(n.Bytes, &name); err != nil || len(rest) > 0 {
				return "", errors.New("malformed directory name")
			}
			return OpenSSLDN(&x509.Certificate{RawSubject: name.FullBytes}), nil
		}
	}
	return "", errors.New("no directory name")
}

// parseIetfAttr reads VOMS's IetfAttrSyntax: policyAuthority [0] GeneralNames with the URI
// <vo>://<host>:<port>, then the FQANs as octet strings.
func parseIetfAttr(der []byte) (vo, host string, fqans []string, err error) {
	var items []asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &items); err != nil || len(rest) > 0 {
		return "", "", nil, errors.New("malformed IetfAttrSyntax")
	}
	for _, it := range items {
		switch {
		case it.Class == asn1.ClassContextSpecific && it.Tag == 0:
			var names []asn1.RawValue
			for rest := it.Bytes; len(rest) > 0; {
				var n asn1.RawValue
				var err error
				if rest, err = asn1.Unmarshal(rest, &n); err != nil {
					return "", "", nil, errors.New("malformed policy authority")
				}
				names = append(names, n)
			}
			for _, n := range names {
				if n.Class == asn1.ClassContextSpecific && n.Tag == 6 { // uniformResourceIdentifier
					v, hostPort, ok := strings.Cut(string(n.Bytes), "://")
					h, _, _ := strings.Cut(hostPort, ":")
					if !ok || v == "" || h == "" {
						return "", "", nil, fmt.Errorf("policy authority %.80q is not <vo>://<host>:<port>", n.Bytes)
					}
					vo, host = v, h
				}
			}
		case it.Class == asn1.ClassUniversal && it.Tag == asn1.TagSequence:
			var vals []asn1.RawValue
			if rest, err := asn1.Unmarshal(it.FullBytes, &vals); err != nil || len(rest) > 0 {
				return "", "", nil, errors.New("malformed values")
			}
			for _, v := range vals {
				if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagOctetString {
					continue // VOMS writes octet strings; other choices carry no FQAN
				}
				f := normaliseFQAN(string(v.Bytes))
				if !strings.HasPrefix(f, "/") || strings.ContainsFunc(f, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
					return "", "", nil, fmt.Errorf("malformed FQAN %.80q", v.Bytes)
				}
				fqans = append(fqans, f)
			}
		}
	}
	if !safeName(vo) || !safeName(host) {
		return "", "", nil, errors.New("no usable policy authority <vo>://<host>:<port>")
	}
	return vo, host, fqans, nil
}

// safeName: a VO or host name usable as a vomsdir path element.
func safeName(s string) bool {
	return s != "" && len(s) <= 255 && !strings.HasPrefix(s, ".") &&
		!strings.ContainsFunc(s, func(r rune) bool { return r == '/' || r == '\\' || r < 0x21 || r == 0x7f })
}

// normaliseFQAN drops the NULL role and capability: /atlas/Role=NULL/Capability=NULL is /atlas, and
// /atlas/Role=production/Capability=NULL is /atlas/Role=production.
func normaliseFQAN(f string) string {
	f = strings.TrimSuffix(f, "/Capability=NULL")
	return strings.TrimSuffix(f, "/Role=NULL")
}

// lsc reads <Dir>/<vo>/<host>.lsc: the server DN and its CA's DN.
func (v *VOMSVerifier) lsc(vo, host string) (serverDN, caDN string, err error) {
	if v == nil || v.Dir == "" {
		return "", "", errors.New("no vomsdir configured")
	}
	p := filepath.Join(v.Dir, vo, host+".lsc")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", "", fmt.Errorf("VOMS server %s of VO %s is not trusted (%s: %w)", host, vo, p, err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) < 2 {
		return "", "", fmt.Errorf("%s: want the server DN and the CA DN on two lines", p)
	}
	return lines[0], lines[1], nil
}

// serverCertificate finds the VOMS server certificate in the AC's certs extension: subject serverDN,
// issuer caDN, verifying against the roots at now.
func (v *VOMSVerifier) serverCertificate(exts []pkix.Extension, serverDN, caDN string, now time.Time) (*x509.Certificate, error) {
	if v.Roots == nil {
		return nil, errors.New("no trusted CAs for VOMS server certificates")
	}
	var certs []*x509.Certificate
	for _, e := range exts {
		if !e.Id.Equal(OIDVOMSCerts) {
			continue
		}
		var raws []asn1.RawValue
		if rest, err := asn1.Unmarshal(e.Value, &raws); err != nil || len(rest) > 0 {
			return nil, errors.New("malformed certs extension")
		}
		for _, r := range raws {
			c, err := x509.ParseCertificate(r.FullBytes)
			if err != nil {
				return nil, fmt.Errorf("certs extension: %w", err)
			}
			certs = append(certs, c)
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs {
		inter.AddCert(c)
	}
	for _, c := range certs {
		if OpenSSLDN(c) != serverDN {
			continue
		}
		if got := issuerDN(c); got != caDN {
			return nil, fmt.Errorf("VOMS server certificate %q is issued by %q, the vomsdir lists %q", serverDN, got, caDN)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: v.Roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return nil, fmt.Errorf("VOMS server certificate %q: %w", serverDN, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("the attribute certificate carries no certificate of %q", serverDN)
}
