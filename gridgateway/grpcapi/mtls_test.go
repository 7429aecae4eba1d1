package grpcapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/jobs"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) issue(t *testing.T, subject pkix.Name, server bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

var (
	oidDC = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidOU = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// TestMutualTLSIdentity runs the gateway with TLS and optional client certificates: a certificate from the
// trusted CA identifies its owner by DN (and maps to a VO); no certificate and no token is Unauthenticated;
// a certificate from another CA fails the handshake.
func TestMutualTLSIdentity(t *testing.T) {
	site, err := config.Parse([]byte(`
audiences: [https://gw.example.org]
vos:
- name: cms
  namespace: cms
  certificates: [{dn: "/DC=ch/DC=cern/OU=cms/CN=.*"}]
queues:
- {name: cms-prod, vos: [cms], image: "pilot:1"}
`))
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := kubehtcv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	ca, otherCA := newCA(t), newCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	serverCert := ca.issue(t, pkix.Name{CommonName: "gateway"}, true)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	g := NewGRPCServer(&Server{Client: c, Site: site}, auth.NewWithKeys(site, nil), tlsConfig, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()

	dial := func(certs ...tls.Certificate) gatewayv1.GatewayClient {
		creds := credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS12})
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return gatewayv1.NewGatewayClient(conn)
	}
	pilotDN := pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidDC, Value: "ch"}, {Type: oidDC, Value: "cern"}, {Type: oidOU, Value: "cms"}, {Type: oidCN, Value: "Pilot"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	pilot := dial(ca.issue(t, pilotDN, false))
	j, err := pilot.Submit(ctx, &gatewayv1.SubmitRequest{ClientKey: "k1", Description: &gatewayv1.JobDescription{Queue: "cms-prod"}})
	if err != nil {
		t.Fatal(err)
	}
	owner := kubehtcv1alpha1.GridJobOwner{DN: "/DC=ch/DC=cern/OU=cms/CN=Pilot"}
	if j.Vo != "cms" || j.Id != "cms."+jobs.Name(owner, "k1") {
		t.Errorf("job %+v: want VO cms and the id of owner %v", j, owner)
	}
	if list, err := pilot.List(ctx, &gatewayv1.ListRequest{}); err != nil || len(list.Jobs) != 1 {
		t.Errorf("List: %v, %d jobs, want 1", err, len(list.GetJobs()))
	}

	unmapped := dial(ca.issue(t, pkix.Name{CommonName: "Somebody"}, false))
	if _, err := unmapped.List(ctx, &gatewayv1.ListRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("certificate mapped to no VO: %v, want PermissionDenied", err)
	}
	anonymous := dial()
	if _, err := anonymous.List(ctx, &gatewayv1.ListRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no certificate, no token: %v, want Unauthenticated", err)
	}
	forged := dial(otherCA.issue(t, pilotDN, false))
	if _, err := forged.List(ctx, &gatewayv1.ListRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("certificate of an untrusted CA: %v, want the handshake to fail (Unavailable)", err)
	}
}
