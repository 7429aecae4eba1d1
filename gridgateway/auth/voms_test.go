package auth_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kubehtc/kubehtc/gridgateway/arcrest/arctest"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
)

var oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}

// acSpec describes a throw-away VOMS attribute certificate.
type acSpec struct {
	holder              *x509.Certificate // the certificate the AC is issued to (its issuer and serial)
	issuer              *arctest.Cert     // the VOMS server: its subject is the AC issuer, its key signs
	signWith            crypto.Signer     // another key (a forgery); nil: issuer's
	embed               []*x509.Certificate
	authority           string // policy authority URI
	fqans               []string
	notBefore, notAfter time.Time
}

func generalNames(rawName []byte) []byte {
	b, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: rawName}})
	if err != nil {
		panic(err)
	}
	return b
}

func mustMarshal(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// build encodes and signs the AC (RFC 5755 layout as VOMS writes it).
func (s acSpec) build(t testing.TB) []byte {
	t.Helper()
	baseID := append(generalNames(s.holder.RawIssuer), mustMarshal(s.holder.SerialNumber)...)
	holder := mustMarshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: baseID}})
	issuer := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: generalNames(s.issuer.Cert.RawSubject)}
	var values []asn1.RawValue
	for _, f := range s.fqans {
		values = append(values, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagOctetString, Bytes: []byte(f)})
	}
	uri := mustMarshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(s.authority)})
	ietf := mustMarshal([]asn1.RawValue{
		{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: uri},
		{FullBytes: mustMarshal(values)},
	})
	type attribute struct {
		Type   asn1.ObjectIdentifier
		Values []asn1.RawValue `asn1:"set"`
	}
	var certs []asn1.RawValue
	for _, c := range s.embed {
		certs = append(certs, asn1.RawValue{FullBytes: c.Raw})
	}
	alg := pkix.AlgorithmIdentifier{Algorithm: oidSHA256WithRSA, Parameters: asn1.NullRawValue}
	info := struct {
		Version   int
		Holder    asn1.RawValue
		Issuer    asn1.RawValue
		Signature pkix.AlgorithmIdentifier
		Serial    *big.Int
		Validity  struct {
			NotBefore time.Time `asn1:"generalized"`
			NotAfter  time.Time `asn1:"generalized"`
		}
		Attributes []attribute
		Extensions []pkix.Extension
	}{
		Version: 1, Holder: asn1.RawValue{FullBytes: holder}, Issuer: issuer, Signature: alg, Serial: big.NewInt(42),
		Attributes: []attribute{{Type: auth.OIDVOMSAttributes, Values: []asn1.RawValue{{FullBytes: ietf}}}},
		Extensions: []pkix.Extension{{Id: auth.OIDVOMSCerts, Value: mustMarshal(certs)}},
	}
	info.Validity.NotBefore, info.Validity.NotAfter = s.notBefore.UTC().Truncate(time.Second), s.notAfter.UTC().Truncate(time.Second)
	tbs, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	key := s.issuer.Key
	if s.signWith != nil {
		key = s.signWith
	}
	digest := sha256.Sum256(tbs)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return mustMarshal(struct {
		Info      asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: tbs}, alg, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
}

func acSeqExtension(acs ...[]byte) pkix.Extension {
	var raws []asn1.RawValue
	for _, a := range acs {
		raws = append(raws, asn1.RawValue{FullBytes: a})
	}
	return pkix.Extension{Id: auth.OIDVOMSACSeq, Value: mustMarshal(raws)}
}

// TestVOMS verifies proxies carrying throw-away VOMS attribute certificates, and maps their FQANs to VOs.
func TestVOMS(t *testing.T) {
	now := time.Now()
	ca := must[*arctest.Cert](t)(arctest.NewCA(pkix.Name{CommonName: "Trusted CA"}, now.Add(-time.Hour), now.Add(24*time.Hour)))
	rogueCA := must[*arctest.Cert](t)(arctest.NewCA(pkix.Name{CommonName: "Trusted CA"}, now.Add(-time.Hour), now.Add(24*time.Hour)))
	user := must[*arctest.Cert](t)(ca.IssueUser(arctest.UserSubject("Jane Doe"), now.Add(-time.Hour), now.Add(12*time.Hour)))
	other := must[*arctest.Cert](t)(ca.IssueUser(arctest.UserSubject("Mallory"), now.Add(-time.Hour), now.Add(12*time.Hour)))
	voms := must[*arctest.Cert](t)(ca.IssueHost("voms.example.org", []string{"voms.example.org"}, nil, now.Add(24*time.Hour)))
	rogueVOMS := must[*arctest.Cert](t)(rogueCA.IssueHost("voms.example.org", []string{"voms.example.org"}, nil, now.Add(24*time.Hour)))
	otherKey := must[*arctest.Cert](t)(ca.IssueHost("other", nil, nil, now.Add(time.Hour))).Key
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	vomsdir := t.TempDir()
	lsc := auth.OpenSSLDN(voms.Cert) + "\n" + auth.OpenSSLDN(ca.Cert) + "\n"
	for p, content := range map[string]string{
		"atlas/voms.example.org.lsc":     lsc,
		"cms/voms.example.org.lsc":       "/O=kubehtc test/CN=another server\n" + auth.OpenSSLDN(ca.Cert) + "\n",
		"dteam/voms.example.org.lsc":     auth.OpenSSLDN(voms.Cert) + "\n/CN=Some Other CA\n",
		"atlas/voms-old.example.org.lsc": "just one line\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(vomsdir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(vomsdir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	site, err := config.Parse([]byte(`
audiences: [https://gw.example.org]
vos:
- name: atlas-prod
  namespace: atlas-prod
  certificates: [{dn: "/O=kubehtc test/OU=users/CN=Jane Doe", fqan: /atlas/Role=production}]
- name: atlas
  namespace: atlas
  certificates: [{dn: "/O=kubehtc test/OU=users/CN=Jane Doe", fqan: /atlas}]
`))
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewWithKeys(site, nil)
	a.Now = func() time.Time { return now }
	a.VOMS = &auth.VOMSVerifier{Dir: vomsdir, Roots: roots}

	good := acSpec{holder: user.Cert, issuer: voms, embed: []*x509.Certificate{voms.Cert}, authority: "atlas://voms.example.org:15001",
		fqans: []string{"/atlas/Role=production/Capability=NULL", "/atlas/Role=NULL/Capability=NULL"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(time.Hour)}
	mod := func(f func(*acSpec)) acSpec { s := good; f(&s); return s }

	cases := []struct {
		name       string
		ext        func(t *testing.T) []pkix.Extension
		wantVO     string
		wantGroups []string
		wantCode   codes.Code
		wantErr    string
	}{
		{name: "production role", ext: func(t *testing.T) []pkix.Extension { return []pkix.Extension{acSeqExtension(good.build(t))} },
			wantVO: "atlas-prod", wantGroups: []string{"/atlas/Role=production", "/atlas"}},
		{name: "VO membership only", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.fqans = []string{"/atlas/Role=NULL/Capability=NULL"} }).build(t))}
		}, wantVO: "atlas", wantGroups: []string{"/atlas"}},
		{name: "no attribute certificate: no rule without an FQAN", ext: func(*testing.T) []pkix.Extension { return nil },
			wantCode: codes.PermissionDenied, wantErr: "not mapped"},
		{name: "wrong signer", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.signWith = otherKey }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "signature does not verify"},
		{name: "expired", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.notBefore, s.notAfter = now.Add(-2*time.Hour), now.Add(-time.Hour) }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "not valid at"},
		{name: "not yet valid", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.notBefore, s.notAfter = now.Add(time.Hour), now.Add(2*time.Hour) }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "not valid at"},
		{name: "unlisted VOMS server", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.authority = "atlas://voms.elsewhere.org:15001" }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "is not trusted"},
		{name: "unlisted VO", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.authority = "lhcb://voms.example.org:15001"; s.fqans = []string{"/lhcb"} }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "is not trusted"},
		{name: "path in the policy authority", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.authority = "atlas://../atlas/voms.example.org:15001" }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "no usable policy authority"},
		{name: "vomsdir lists another server DN", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.authority = "cms://voms.example.org:15001"; s.fqans = []string{"/cms"} }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "is not the VOMS server"},
		{name: "vomsdir lists another CA", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.authority = "dteam://voms.example.org:15001"; s.fqans = []string{"/dteam"} }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "the vomsdir lists"},
		{name: "malformed lsc", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.authority = "atlas://voms-old.example.org:15001" }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "two lines"},
		{name: "server certificate of an untrusted CA", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.issuer, s.embed = rogueVOMS, []*x509.Certificate{rogueVOMS.Cert} }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "VOMS server certificate"},
		{name: "no embedded server certificate", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.embed = nil }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "carries no certificate"},
		{name: "issued to another user", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.holder = other.Cert }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "holder"},
		{name: "FQAN of another VO", ext: func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{acSeqExtension(mod(func(s *acSpec) { s.fqans = []string{"/cms/Role=production"} }).build(t))}
		}, wantCode: codes.Unauthenticated, wantErr: "outside VO"},
		{name: "malformed sequence", ext: func(*testing.T) []pkix.Extension {
			return []pkix.Extension{{Id: auth.OIDVOMSACSeq, Value: []byte{0x30, 0x03, 0x02, 0x01}}}
		}, wantCode: codes.Unauthenticated, wantErr: "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proxy := must[*arctest.Cert](t)(user.Proxy(arctest.ProxyOptions{Extensions: tc.ext(t)}))
			id, err := a.VerifyProxyCertificate(proxy.FullChain(), roots)
			if tc.wantErr != "" {
				if status.Code(err) != tc.wantCode || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %v mentioning %q", err, tc.wantCode, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.VO.Name != tc.wantVO {
				t.Errorf("VO %s, want %s", id.VO.Name, tc.wantVO)
			}
			if diff := cmp.Diff(tc.wantGroups, id.Groups); diff != "" {
				t.Errorf("FQANs (-want,+got):\n%s", diff)
			}
		})
	}

	t.Run("without a VOMS verifier the attributes are ignored", func(t *testing.T) {
		plain := auth.NewWithKeys(site, nil)
		proxy := must[*arctest.Cert](t)(user.Proxy(arctest.ProxyOptions{Extensions: []pkix.Extension{acSeqExtension(good.build(t))}}))
		if _, err := plain.VerifyProxyCertificate(proxy.FullChain(), roots); status.Code(err) != codes.PermissionDenied {
			t.Errorf("error %v, want PermissionDenied (no FQANs, no rule without one)", err)
		}
	})
}

// FuzzVOMSAttributeCertificate feeds arbitrary bytes to the attribute certificate parser: it must refuse
// them without panicking (the seed is a valid AC, which fails here only for want of trust).
func FuzzVOMSAttributeCertificate(f *testing.F) {
	now := time.Now()
	ca, err := arctest.NewCA(pkix.Name{CommonName: "Fuzz CA"}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	user, err := ca.IssueUser(arctest.UserSubject("Fuzz"), now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	voms, err := ca.IssueHost("voms.example.org", nil, nil, now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(acSpec{holder: user.Cert, issuer: voms, embed: []*x509.Certificate{voms.Cert}, authority: "atlas://voms.example.org:15001",
		fqans: []string{"/atlas"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(time.Hour)}.build(f))
	f.Add([]byte{0x30, 0x00})
	v := &auth.VOMSVerifier{Dir: f.TempDir()}
	f.Fuzz(func(t *testing.T, der []byte) {
		if _, err := v.Verify(der, []*x509.Certificate{user.Cert}, now); err == nil {
			t.Fatal("an AC verified without any trusted VOMS server")
		}
	})
}
