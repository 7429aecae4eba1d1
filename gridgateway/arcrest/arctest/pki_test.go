package arctest

import (
	"crypto/x509/pkix"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSubjectHashesMatchOpenSSL checks the hash-link names against the openssl command, when installed.
func TestSubjectHashesMatchOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	for _, subj := range []pkix.Name{
		{CommonName: "Test CA"},
		{Country: []string{"CH"}, Organization: []string{"Kube  HTC"}, OrganizationalUnit: []string{"Grid"}, CommonName: " Mixed Case CA "},
	} {
		ca, err := NewCA(subj, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(f, ca.CertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			flag string
			got  uint32
		}{{"-subject_hash", SubjectHash(ca.Cert)}, {"-subject_hash_old", SubjectHashOld(ca.Cert)}} {
			out, err := exec.Command("openssl", "x509", c.flag, "-noout", "-in", f).Output()
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSpace(string(out)); want != fmt.Sprintf("%08x", c.got) {
				t.Errorf("%v %s: openssl says %s, SubjectHash gives %08x", subj, c.flag, want, c.got)
			}
		}
	}
}
