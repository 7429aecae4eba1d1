package config

import (
	"strings"
	"testing"
)

const base = `
audiences: [https://gw.example.org]
issuers: [{url: https://iss.example.org/, jwksFile: keys.json}]
vos:
- name: atlas
  namespace: atlas
  tokens: [{issuer: https://iss.example.org/, subject: "pilot-.*", group: /atlas/pilot}]
  certificates: [{dn: "/DC=ch/DC=cern/.*/CN=atlpilo1", fqan: /atlas/Role=pilot}]
- name: cms
  namespace: cms-ns
  tokens: [{issuer: https://iss.example.org/}]
queues:
- {name: atlas-prod, vos: [atlas], image: "pilot:1"}
`

func TestParseRejects(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown field", base + "colour: blue\n", "unknown field"},
		{"no audience", strings.Replace(base, "audiences: [https://gw.example.org]", "", 1), "audiences"},
		{"issuer with two key sources", strings.Replace(base, "jwksFile: keys.json", "jwksFile: k, jwksURL: https://x/", 1), "exactly one of jwksFile and jwksURL"},
		{"rule of an unknown issuer", strings.Replace(base, "tokens: [{issuer: https://iss.example.org/}]", "tokens: [{issuer: https://other/}]", 1), "not among the issuers"},
		{"bad subject pattern", strings.Replace(base, `"pilot-.*"`, `"pilot-("`, 1), "subject"},
		{"queue of an unknown VO", strings.Replace(base, "vos: [atlas], image", "vos: [lhcb], image", 1), `unknown VO "lhcb"`},
		{"queue without image", strings.Replace(base, `, image: "pilot:1"`, "", 1), "image is required"},
		{"bad namespace", strings.Replace(base, "namespace: cms-ns", "namespace: CMS_NS", 1), "namespace"},
		{"reserved pod label", strings.Replace(base, `image: "pilot:1"}`, `image: "pilot:1", podLabels: {kubehtc.io/class: service}}`, 1), "reserved"},
		{"bad RTE repository", base + "runtimeEnvironments: [{name: X, cvmfs: [Not_A_Repo]}]\n", "CVMFS repository"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := Parse([]byte(base)); err != nil {
		t.Fatalf("valid configuration: %v", err)
	}
}

func TestVOMapping(t *testing.T) {
	s, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	tokens := []struct {
		name string
		c    TokenClaims
		want string // "" = no VO
	}{
		// atlas needs the subject pattern and the group; cms takes anything else from the issuer.
		{"atlas pilot", TokenClaims{Issuer: "https://iss.example.org/", Subject: "pilot-7", Groups: []string{"/atlas", "/atlas/pilot"}}, "atlas"},
		{"atlas subject without group falls to cms", TokenClaims{Issuer: "https://iss.example.org/", Subject: "pilot-7"}, "cms"},
		{"subject must match entirely", TokenClaims{Issuer: "https://iss.example.org/", Subject: "xpilot-7", Groups: []string{"/atlas/pilot"}}, "cms"},
		{"other issuer", TokenClaims{Issuer: "https://other/", Subject: "pilot-7", Groups: []string{"/atlas/pilot"}}, ""},
	}
	for _, tc := range tokens {
		t.Run(tc.name, func(t *testing.T) {
			vo, ok := s.VOForToken(tc.c)
			if got := map[bool]string{true: "", false: ""}[ok]; ok {
				got = vo.Name
				if got != tc.want {
					t.Fatalf("VO %q, want %q", got, tc.want)
				}
			} else if tc.want != "" {
				t.Fatalf("no VO, want %q", tc.want)
			}
		})
	}
	certs := []struct {
		name string
		c    CertificateIdentity
		want bool
	}{
		{"pilot role", CertificateIdentity{DN: "/DC=ch/DC=cern/OU=Users/CN=atlpilo1", FQANs: []string{"/atlas/Role=pilot"}}, true},
		{"no FQAN", CertificateIdentity{DN: "/DC=ch/DC=cern/OU=Users/CN=atlpilo1"}, false},
		{"other DN", CertificateIdentity{DN: "/DC=org/CN=atlpilo1", FQANs: []string{"/atlas/Role=pilot"}}, false},
	}
	for _, tc := range certs {
		t.Run(tc.name, func(t *testing.T) {
			vo, ok := s.VOForCertificate(tc.c)
			if ok != tc.want || (ok && vo.Name != "atlas") {
				t.Fatalf("mapped %v (%v), want %v", ok, vo, tc.want)
			}
		})
	}
}
