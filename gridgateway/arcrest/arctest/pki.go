// Package arctest builds throw-away grid PKI for tests and benchmarks of the ARC REST interface: a CA, host
// and user certificates, RFC 3820 proxy certificates, and a CA directory in the IGTF layout (hash links),
// all in Go.
package arctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// Cert is a certificate with its private key and the chain above it (issuer first, without the root).
type Cert struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate
}

// oidProxyCertInfo and oidInheritAll are RFC 3820's proxyCertInfo extension and the inherit-all policy.
var (
	oidProxyCertInfo = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 14}
	oidInheritAll    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 21, 1}
	oidCommonName    = asn1.ObjectIdentifier{2, 5, 4, 3}
)

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

// rsaKey makes a 2048-bit RSA key: what grid middleware expects of user certificates and proxies.
func rsaKey() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }

// NewCA returns a self-signed CA valid from notBefore to notAfter.
func NewCA(subject pkix.Name, notBefore, notAfter time.Time) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: subject, NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return sign(tmpl, tmpl, key, key, nil)
}

func sign(tmpl, parent *x509.Certificate, key crypto.Signer, parentKey crypto.Signer, chain []*x509.Certificate) (*Cert, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: c, Key: key, Chain: chain}, nil
}

// IssueUser issues an end-entity (user) certificate with an RSA key.
func (ca *Cert) IssueUser(subject pkix.Name, notBefore, notAfter time.Time) (*Cert, error) {
	key, err := rsaKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: subject, NotBefore: notBefore, NotAfter: notAfter, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return sign(tmpl, ca.Cert, key, ca.Key, nil)
}

// IssueHost issues a server certificate for the given DNS names and IP addresses.
func (ca *Cert) IssueHost(cn string, names []string, ips []net.IP, notAfter time.Time) (*Cert, error) {
	key, err := rsaKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{Organization: []string{"kubehtc test"}, CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, BasicConstraintsValid: true,
		DNSNames: names, IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return sign(tmpl, ca.Cert, key, ca.Key, nil)
}

// ProxyOptions shape a proxy certificate; the zero value is a valid RFC 3820 proxy.
type ProxyOptions struct {
	// NotBefore, NotAfter default to now-5m and now+12h.
	NotBefore, NotAfter time.Time
	// Subject overrides the subject (normally the issuer's subject plus CN=<serial>).
	Subject []pkix.AttributeTypeAndValue
	// NoProxyCertInfo leaves out the proxyCertInfo extension.
	NoProxyCertInfo bool
	// SignWith signs with another key than the issuer's (a forged proxy).
	SignWith crypto.Signer
	// Extensions are added to the proxy (e.g. a VOMS attribute certificate sequence).
	Extensions []pkix.Extension
}

// Proxy issues an RFC 3820 proxy certificate signed by c (a user certificate or a proxy).
func (c *Cert) Proxy(o ProxyOptions) (*Cert, error) {
	key, err := rsaKey()
	if err != nil {
		return nil, err
	}
	return c.ProxyForKey(key, o)
}

// ProxyForKey is Proxy for a given key (a delegation's CSR key: pass a Cert whose Key is only public by
// using ProxyForPublicKey instead).
func (c *Cert) ProxyForKey(key crypto.Signer, o ProxyOptions) (*Cert, error) {
	p, err := c.ProxyForPublicKey(key.Public(), o)
	if err != nil {
		return nil, err
	}
	p.Key = key
	return p, nil
}

// ProxyForPublicKey issues a proxy certificate for a public key (the Key of the result is nil).
func (c *Cert) ProxyForPublicKey(pub crypto.PublicKey, o ProxyOptions) (*Cert, error) {
	sn := serial()
	var rdns pkix.RDNSequence
	if _, err := asn1.Unmarshal(c.Cert.RawSubject, &rdns); err != nil {
		return nil, err
	}
	rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: oidCommonName, Value: sn.String()}})
	if o.Subject != nil {
		rdns = nil
		for _, a := range o.Subject {
			rdns = append(rdns, pkix.RelativeDistinguishedNameSET{a})
		}
	}
	rawSubject, err := asn1.Marshal(rdns)
	if err != nil {
		return nil, err
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-5 * time.Minute)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(12 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, RawSubject: rawSubject, NotBefore: o.NotBefore, NotAfter: o.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	if !o.NoProxyCertInfo {
		policy, err := asn1.Marshal(struct {
			Policy struct{ Language asn1.ObjectIdentifier }
		}{Policy: struct{ Language asn1.ObjectIdentifier }{oidInheritAll}})
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidProxyCertInfo, Critical: true, Value: policy}}
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, o.Extensions...)
	parent, signer := c.Cert, c.Key
	if o.SignWith != nil {
		// A forgery: the issuer's name, another key (crypto/x509 insists that the parent's key match).
		forged := *c.Cert
		forged.PublicKey = o.SignWith.Public()
		parent, signer = &forged, o.SignWith
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: cert, Chain: append([]*x509.Certificate{c.Cert}, c.Chain...)}, nil
}

// FullChain is the certificate followed by the chain above it (leaf first, as TLS sends it).
func (c *Cert) FullChain() []*x509.Certificate {
	return append([]*x509.Certificate{c.Cert}, c.Chain...)
}

// CertPEM is the PEM of the certificate.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM is the PEM of the private key (PKCS#1 for RSA, as grid tools read it; PKCS#8 otherwise).
func (c *Cert) KeyPEM() []byte {
	if k, ok := c.Key.(*rsa.PrivateKey); ok {
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// ProxyFilePEM is a proxy file as grid clients use it: certificate, key, then the chain.
func (c *Cert) ProxyFilePEM() []byte {
	out := append(c.CertPEM(), c.KeyPEM()...)
	for _, x := range c.Chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: x.Raw})...)
	}
	return out
}

// WriteFile writes data with mode 0600, creating the directory.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// WriteCADir writes CA certificates into dir in the IGTF layout: <name>.pem and the hash links OpenSSL
// looks up, <subject_hash>.0 and <subject_hash_old>.0.
func WriteCADir(dir string, cas ...*Cert) error {
	for i, ca := range cas {
		name := fmt.Sprintf("ca%d.pem", i)
		if err := WriteFile(filepath.Join(dir, name), ca.CertPEM()); err != nil {
			return err
		}
		for _, h := range []uint32{SubjectHash(ca.Cert), SubjectHashOld(ca.Cert)} {
			link := filepath.Join(dir, fmt.Sprintf("%08x.0", h))
			_ = os.Remove(link)
			if err := os.Symlink(name, link); err != nil {
				return err
			}
		}
		// The Globus signing policy the ARC client enforces: the CA signs its own namespace.
		dn := oneLineDN(ca.Cert)
		ns := dn[:strings.LastIndex(dn, "/")]
		policy := fmt.Sprintf("access_id_CA X509 '%s'\npos_rights globus CA:sign\ncond_subjects globus '\"%s/*\"'\n", dn, ns)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%08x.signing_policy", SubjectHash(ca.Cert))), []byte(policy), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// oneLineDN renders a subject in the OpenSSL slash form (string attributes only).
func oneLineDN(c *x509.Certificate) string {
	var rdns pkix.RDNSequence
	if _, err := asn1.Unmarshal(c.RawSubject, &rdns); err != nil {
		return ""
	}
	names := map[string]string{"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU", "0.9.2342.19200300.100.1.25": "DC"}
	var b strings.Builder
	for _, rdn := range rdns {
		for _, a := range rdn {
			n, ok := names[a.Type.String()]
			if !ok {
				n = a.Type.String()
			}
			fmt.Fprintf(&b, "/%s=%v", n, a.Value)
		}
	}
	return b.String()
}

// SubjectHashOld is OpenSSL's X509_subject_name_hash_old: MD5 of the DER subject, first 4 bytes little-endian.
func SubjectHashOld(c *x509.Certificate) uint32 {
	sum := md5.Sum(c.RawSubject)
	return binary.LittleEndian.Uint32(sum[:4])
}

// SubjectHash is OpenSSL's X509_subject_name_hash: SHA-1 of the canonical subject encoding (each RDN SET
// with string values as lower-cased, white-space-collapsed UTF8String, without the outer SEQUENCE), first
// 4 bytes little-endian.
func SubjectHash(c *x509.Certificate) uint32 {
	var rdns pkix.RDNSequence
	if _, err := asn1.Unmarshal(c.RawSubject, &rdns); err != nil {
		return 0
	}
	var canon []byte
	for _, rdn := range rdns {
		type atv struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue
		}
		var set []atv
		for _, a := range rdn {
			s, ok := a.Value.(string)
			if !ok {
				continue
			}
			v := strings.Join(strings.FieldsFunc(strings.TrimSpace(s), unicode.IsSpace), " ")
			v = strings.Map(func(r rune) rune {
				if r < 0x80 {
					return unicode.ToLower(r)
				}
				return r
			}, v)
			set = append(set, atv{Type: a.Type, Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(v)}})
		}
		b, err := asn1.MarshalWithParams(set, "set")
		if err != nil {
			return 0
		}
		canon = append(canon, b...)
	}
	sum := sha1.Sum(canon)
	return binary.LittleEndian.Uint32(sum[:4])
}

// UserSubject is the subject of a test user certificate: /O=kubehtc test/OU=users/CN=<cn>.
func UserSubject(cn string) pkix.Name {
	return pkix.Name{Organization: []string{"kubehtc test"}, OrganizationalUnit: []string{"users"}, CommonName: cn}
}
