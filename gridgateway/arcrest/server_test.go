package arcrest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/session"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

const unitSite = `
audiences: [https://ce.test/arex]
issuers: [{url: https://issuer.test/, jwksFile: unused}]
vos:
- name: atlas
  namespace: atlas
  certificates: [{dn: "/O=kubehtc test/OU=users/CN=.*"}]
  tokens: [{issuer: https://issuer.test/}]
queues:
- {name: atlas-prod, vos: [atlas], image: "pilot:1", defaultWallTimeSeconds: 3600, limits: {maxCores: 8, maxDiskMiB: 20480}}
runtimeEnvironments:
- {name: ENV/PROXY, mountCredential: true}
`

type fixture struct {
	t      *testing.T
	srv    *Server
	client client.WithWatch
	store  *session.FileStore
	certs  *certs
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	site, err := config.Parse([]byte(unitSite))
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
	c := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&kubehtcv1alpha1.GridJob{}).
		WithObjects(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourceCPU: resourceMust("32")}}}).
		Build()
	store, err := session.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cs := testCerts(t)
	a := auth.NewWithKeys(site, map[string]*jose.JSONWebKeySet{"https://issuer.test/": cs.jwks})
	srv, err := New(Options{Site: site, Auth: a, CAs: cs.roots, Client: c, Store: store, PublicURL: "https://ce.test/arex", MaxUploadBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, srv: srv, client: c, store: store, certs: cs}
}

// caller is how a request authenticates: a TLS chain or a bearer token.
type caller struct {
	chain []*x509.Certificate
	token string
}

func (f *fixture) do(who caller, method, target string, body string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if who.chain != nil {
		req.TLS = &tls.ConnectionState{PeerCertificates: who.chain}
	}
	if who.token != "" {
		req.Header.Set("Authorization", "Bearer "+who.token)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

// jobsDoc is a <jobs> answer.
type jobsDoc struct {
	Jobs []struct {
		Code   int    `xml:"status-code"`
		Reason string `xml:"reason"`
		ID     string `xml:"id"`
		State  string `xml:"state"`
		Info   struct {
			Activity struct {
				States []string `xml:"State"`
				StdOut string   `xml:"StdOut"`
				Queue  string   `xml:"Queue"`
			} `xml:"ComputingActivity"`
		} `xml:"info_document"`
		Delegation []string `xml:"delegation_id"`
	} `xml:"job"`
}

func decodeJobs(t *testing.T, rec *httptest.ResponseRecorder) jobsDoc {
	t.Helper()
	var d jobsDoc
	if err := xml.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatalf("answer %q: %v", rec.Body.String(), err)
	}
	return d
}

const job = `&(executable="run.sh")(stdout="out.txt")(inputfiles=("run.sh" "")("in.dat" ""))(outputfiles=("result.dat" ""))`

func (f *fixture) submit(who caller, body string) string {
	f.t.Helper()
	rec := f.do(who, "POST", APIPath+"/jobs?action=new", body)
	d := decodeJobs(f.t, rec)
	if rec.Code != 201 || len(d.Jobs) != 1 || d.Jobs[0].Code != 201 {
		f.t.Fatalf("submit: %d %s", rec.Code, rec.Body.String())
	}
	return d.Jobs[0].ID
}

func (f *fixture) gridJob(id string) *kubehtcv1alpha1.GridJob {
	f.t.Helper()
	ns, name, _ := strings.Cut(id, ".")
	var gj kubehtcv1alpha1.GridJob
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &gj); err != nil {
		f.t.Fatal(err)
	}
	return &gj
}

func TestVersionsAndInfo(t *testing.T) {
	f := newFixture(t)
	user := caller{chain: f.certs.userProxy}
	cases := []struct {
		name, target, accept string
		who                  caller
		wantCode             int
		wantBody             []string
	}{
		{name: "versions XML", target: RESTPath, wantCode: 200, wantBody: []string{"<versions><version>1.0</version></versions>"}},
		{name: "versions JSON: root dropped, one version is not an array", target: RESTPath, accept: "application/json", wantCode: 200, wantBody: []string{`{"version":"1.0"}`}},
		{name: "unknown version", target: RESTPath + "/2.0/info", who: user, wantCode: 404, wantBody: []string{"Version Not Supported"}},
		{name: "SOAP endpoint", target: BasePath, wantCode: 404},
		{name: "info needs a caller", target: APIPath + "/info", wantCode: 401},
		{name: "info GLUE2", target: APIPath + "/info?schema=glue2", who: user, wantCode: 200, wantBody: []string{
			`<InfoRoot><Domains xmlns="http://schemas.ogf.org/glue/2009/03/spec_2.0_r1">`, "<InterfaceName>org.nordugrid.arcrest</InterfaceName>",
			"<URL>https://ce.test/arex</URL>", "<Name>atlas-prod</Name>", "<MaxSlotsPerJob>8</MaxSlotsPerJob>",
			"<MaxDiskSpace>20</MaxDiskSpace>", "<TotalSlots>32</TotalSlots>", "<WorkingAreaFree>", "<AppName>ENV/PROXY</AppName>",
		}},
		{name: "info JSON", target: APIPath + "/info", accept: "application/json", who: user, wantCode: 200, wantBody: []string{`{"Domains":{"AdminDomain":{`, `"InterfaceName":"org.nordugrid.arcrest"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(tc.who, "GET", "https://ce.test"+tc.target, "", "Accept", tc.accept)
			if rec.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", rec.Code, tc.wantCode, rec.Body.String())
			}
			for _, w := range tc.wantBody {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("answer lacks %q:\n%s", w, rec.Body.String())
				}
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name     string
		who      caller
		target   string
		wantCode int
	}{
		{name: "proxy of a trusted user", who: caller{chain: f.certs.userProxy}, target: "/jobs", wantCode: 200},
		{name: "proxy under an untrusted CA", who: caller{chain: f.certs.rogueProxy}, target: "/jobs", wantCode: 401},
		{name: "expired proxy", who: caller{chain: f.certs.expiredProxy}, target: "/jobs", wantCode: 401},
		{name: "token with all scopes", who: caller{token: f.certs.token(t, "pilot", auth.ScopeRead)}, target: "/jobs", wantCode: 200},
		{name: "token without compute.read", who: caller{token: f.certs.token(t, "pilot", auth.ScopeCreate)}, target: "/jobs", wantCode: 403},
		{name: "garbage token", who: caller{token: "x.y.z"}, target: "/jobs", wantCode: 401},
		{name: "nobody", target: "/jobs", wantCode: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if rec := f.do(tc.who, "GET", APIPath+tc.target, ""); rec.Code != tc.wantCode {
				t.Errorf("code %d, want %d: %s", rec.Code, tc.wantCode, rec.Body.String())
			}
		})
	}
}

func TestJobLifecycle(t *testing.T) {
	f := newFixture(t)
	user, other := caller{chain: f.certs.userProxy}, caller{chain: f.certs.otherProxy}
	id := f.submit(user, job)
	gj := f.gridJob(id)
	if diff := cmp.Diff([]string{"run.sh", "in.dat"}, gj.Spec.Description.Inputs); diff != "" {
		t.Errorf("inputs (-want,+got):\n%s", diff)
	}
	if gj.Annotations[translate.SessionInputsAnnotation] != translate.SessionInputsPending || gj.Spec.Owner.DN != "/O=kubehtc test/OU=users/CN=Jane Doe" {
		t.Errorf("GridJob annotations %v owner %+v", gj.Annotations, gj.Spec.Owner)
	}

	// Bad submissions: a per-item error, never a failed call.
	for _, body := range []string{"</ActivityDescriptions>", `&(queue="nope")`, `&(count=64)`} {
		rec := f.do(user, "POST", APIPath+"/jobs?action=new", body)
		d := decodeJobs(t, rec)
		if rec.Code != 201 || len(d.Jobs) != 1 || d.Jobs[0].Code != 500 || d.Jobs[0].Reason == "" {
			t.Errorf("submit %q: %d %s, want 201 with one 500 item", body, rec.Code, rec.Body.String())
		}
	}

	// Session uploads: traversal refused, oversize refused, inputs complete → ready.
	for _, c := range []struct {
		name, path, body string
		hdr              []string
		want             int
	}{
		{"climbing out", "/session/../../etc/passwd", "x", nil, 400},
		{"encoded climbing out", "/session/%2e%2e/x", "x", nil, 400},
		{"too big", "/session/in.dat", strings.Repeat("x", 2000), nil, 413},
		{"first input", "/session/run.sh", "#!/bin/sh\necho hi\n", []string{"If-None-Match", "*", "Expect", "100-continue"}, 200},
	} {
		if rec := f.do(user, "PUT", APIPath+"/jobs/"+id+c.path, c.body, c.hdr...); rec.Code != c.want {
			t.Errorf("PUT %s: code %d, want %d: %s", c.name, rec.Code, c.want, rec.Body.String())
		}
	}
	if a := f.gridJob(id).Annotations[translate.SessionInputsAnnotation]; a != translate.SessionInputsPending {
		t.Errorf("after one of two inputs the job is %q, want pending", a)
	}
	// The second input in two ranges.
	if rec := f.do(user, "PUT", APIPath+"/jobs/"+id+"/session/in.dat", "hello ", "Content-Range", "bytes 0-5/11"); rec.Code != 200 {
		t.Fatalf("ranged PUT: %d %s", rec.Code, rec.Body.String())
	}
	if a := f.gridJob(id).Annotations[translate.SessionInputsAnnotation]; a != translate.SessionInputsPending {
		t.Errorf("after half an input the job is %q, want pending", a)
	}
	if rec := f.do(user, "PUT", APIPath+"/jobs/"+id+"/session/in.dat", "world", "Content-Range", "bytes 6-10/11"); rec.Code != 200 {
		t.Fatalf("ranged PUT: %d %s", rec.Code, rec.Body.String())
	}
	if a := f.gridJob(id).Annotations[translate.SessionInputsAnnotation]; a != translate.SessionInputsReady {
		t.Errorf("after all inputs the job is %q, want ready", a)
	}
	if rec := f.do(user, "GET", APIPath+"/jobs/"+id+"/session/in.dat", ""); rec.Body.String() != "hello world" {
		t.Errorf("GET in.dat = %q", rec.Body.String())
	}
	rec := f.do(user, "GET", APIPath+"/jobs/"+id+"/session", "")
	if want := `<list><file size="11">in.dat</file><file size="18">run.sh</file></list>`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("listing %s, want %s", rec.Body.String(), want)
	}
	rec = f.do(user, "PROPFIND", APIPath+"/jobs/"+id+"/session", "<propfind/>", "Depth", "1")
	if rec.Code != 207 || strings.Count(rec.Body.String(), "<d:response>") != 3 || !strings.Contains(rec.Body.String(), "<d:getcontentlength>11</d:getcontentlength>") {
		t.Errorf("PROPFIND depth 1: %d %s", rec.Code, rec.Body.String())
	}
	if rec = f.do(user, "PROPFIND", APIPath+"/jobs/"+id+"/session/", "", "Depth", "0"); strings.Count(rec.Body.String(), "<d:response>") != 1 {
		t.Errorf("PROPFIND depth 0: %s", rec.Body.String())
	}
	if rec = f.do(user, "GET", APIPath+"/jobs/"+id+"/diagnose/description", ""); rec.Body.String() != job {
		t.Errorf("diagnose/description = %q", rec.Body.String())
	}

	// Another user of the same VO sees nothing of it.
	for _, target := range []string{"/session/in.dat", "/diagnose/errors"} {
		if rec := f.do(other, "GET", APIPath+"/jobs/"+id+target, ""); rec.Code != 404 {
			t.Errorf("other user GET %s: %d", target, rec.Code)
		}
	}
	body := "<jobs><job><id>" + id + "</id></job><job><id>atlas.gj-nothere</id></job></jobs>"
	if d := decodeJobs(t, f.do(other, "POST", APIPath+"/jobs?action=kill", body)); d.Jobs[0].Code != 404 {
		t.Errorf("other user kill: %+v", d.Jobs)
	}

	// status, info, listing (JSON too), kill, clean.
	d := decodeJobs(t, f.do(user, "POST", APIPath+"/jobs?action=status", body))
	if len(d.Jobs) != 2 || d.Jobs[0].State != "ACCEPTING" || d.Jobs[1].Code != 404 {
		t.Errorf("status: %+v", d.Jobs)
	}
	d = decodeJobs(t, f.do(user, "POST", APIPath+"/jobs?action=info", body))
	if a := d.Jobs[0].Info.Activity; !cmp.Equal(a.States[:1], []string{"arcrest:ACCEPTING"}) || a.StdOut != "out.txt" || a.Queue != "atlas-prod" {
		t.Errorf("info: %+v", a)
	}
	rec = f.do(user, "POST", APIPath+"/jobs?action=status", `{"job":{"id":"`+id+`"}}`, "Content-Type", "application/json", "Accept", "application/json")
	var js map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &js); err != nil || js["job"].(map[string]any)["state"] != "ACCEPTING" {
		t.Errorf("JSON status: %s", rec.Body.String())
	}
	if rec = f.do(user, "GET", APIPath+"/jobs", ""); !strings.Contains(rec.Body.String(), "<id>"+id+"</id><state>ACCEPTING</state>") {
		t.Errorf("listing: %s", rec.Body.String())
	}
	if d = decodeJobs(t, f.do(user, "POST", APIPath+"/jobs?action=clean", body)); d.Jobs[0].Code != 505 {
		t.Errorf("clean of a live job: %+v", d.Jobs[0])
	}
	if d = decodeJobs(t, f.do(user, "POST", APIPath+"/jobs?action=kill", body)); d.Jobs[0].Code != 202 || !f.gridJob(id).Spec.Cancel {
		t.Errorf("kill: %+v", d.Jobs[0])
	}
	gj = f.gridJob(id)
	gj.Status.State = kubehtcv1alpha1.StateKilled
	if err := f.client.Status().Update(context.Background(), gj); err != nil {
		t.Fatal(err)
	}
	if d = decodeJobs(t, f.do(user, "POST", APIPath+"/jobs?action=clean", body)); d.Jobs[0].Code != 202 {
		t.Errorf("clean: %+v", d.Jobs[0])
	}
	if rec = f.do(user, "GET", APIPath+"/jobs/"+id+"/session/in.dat", ""); rec.Code != 404 {
		t.Errorf("session after clean: %d", rec.Code)
	}
	if _, err := f.store.Stat(session.JobKey{Namespace: "atlas", Name: strings.TrimPrefix(id, "atlas.")}, session.AreaSession, "in.dat"); !session.IsNotExist(err) {
		t.Errorf("store after clean: %v", err)
	}
}

func TestDelegation(t *testing.T) {
	f := newFixture(t)
	user, other := caller{chain: f.certs.userProxy}, caller{chain: f.certs.otherProxy}
	rec := f.do(user, "POST", APIPath+"/delegations?action=new", "")
	loc := rec.Header().Get("Location")
	if rec.Code != 201 || !strings.HasPrefix(loc, APIPath+"/delegations/") {
		t.Fatalf("new: %d %q %s", rec.Code, loc, rec.Body.String())
	}
	did := strings.TrimPrefix(loc, APIPath+"/delegations/")
	blk, _ := pem.Decode(rec.Body.Bytes())
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(by *signer) string {
		der := by.proxyFor(t, csr.PublicKey)
		var b bytes.Buffer
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		for _, c := range by.chain {
			b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		}
		return b.String()
	}
	// Another user may not complete (or even see) it; a chain of another user is refused.
	if rec := f.do(other, "PUT", loc, signed(f.certs.otherSigner)); rec.Code != 404 {
		t.Errorf("PUT by another user: %d", rec.Code)
	}
	if rec := f.do(user, "PUT", loc, signed(f.certs.otherSigner)); rec.Code != 403 {
		t.Errorf("PUT of another user's chain: %d %s", rec.Code, rec.Body.String())
	}
	if rec := f.do(user, "PUT", loc, signed(f.certs.userSigner)); rec.Code != 200 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body.String())
	}
	var sec corev1.Secret
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "atlas", Name: delegationSecretName(did)}, &sec); err != nil {
		t.Fatal(err)
	}
	cred := string(sec.Data[translate.CredentialKey])
	if strings.Count(cred, "BEGIN CERTIFICATE") != 3 || strings.Count(cred, "PRIVATE KEY-----") != 2 || len(sec.Data[PendingKeyKey]) != 0 {
		t.Errorf("stored credential: %d certificates, key blocks %d, pending key %d bytes", strings.Count(cred, "BEGIN CERTIFICATE"), strings.Count(cred, "PRIVATE KEY-----"), len(sec.Data[PendingKeyKey]))
	}
	// A job running with the delegation publishes when its proxy expires (GLUE2 ProxyExpirationTime).
	jid := f.submit(user, `&(executable="/bin/true")(delegationid="`+did+`")`)
	exp, _ := time.Parse(time.RFC3339, sec.Annotations[DelegationExpiresAnnotation])
	if rec := f.do(user, "POST", APIPath+"/jobs?action=info", "<jobs><job><id>"+jid+"</id></job></jobs>"); exp.IsZero() ||
		!strings.Contains(rec.Body.String(), "<ProxyExpirationTime>"+glueTime(exp)+"</ProxyExpirationTime>") {
		t.Errorf("info of a job with delegation %s (expires %v): %s", did, exp, rec.Body.String())
	}
	if rec := f.do(user, "GET", APIPath+"/delegations", ""); !strings.Contains(rec.Body.String(), "<id>"+did+"</id>") {
		t.Errorf("list: %s", rec.Body.String())
	}
	if rec := f.do(other, "GET", APIPath+"/delegations", ""); strings.Contains(rec.Body.String(), did) {
		t.Errorf("other user's list shows the delegation: %s", rec.Body.String())
	}
	if rec := f.do(user, "POST", loc+"?action=get", ""); rec.Code != 200 || strings.Contains(rec.Body.String(), "PRIVATE") || strings.Count(rec.Body.String(), "BEGIN CERTIFICATE") != 3 {
		t.Errorf("get: %d %s", rec.Code, rec.Body.String())
	}
	// A job using it mounts its Secret.
	id := f.submit(user, `&(executable="/bin/true")(runtimeenvironment="ENV/PROXY")(delegationid="`+did+`")`)
	if gj := f.gridJob(id); gj.Spec.CredentialSecretName != sec.Name || gj.Spec.CredentialType != kubehtcv1alpha1.CredentialX509Proxy {
		t.Errorf("job credential %q %q", gj.Spec.CredentialSecretName, gj.Spec.CredentialType)
	}
	if d := decodeJobs(t, f.do(user, "POST", APIPath+"/jobs?action=delegations", "<jobs><job><id>"+id+"</id></job></jobs>")); !cmp.Equal(d.Jobs[0].Delegation, []string{did}) {
		t.Errorf("action=delegations: %+v", d.Jobs)
	}
	// Renew: a new CSR; the old credential stays until the new chain arrives.
	rec = f.do(user, "POST", loc+"?action=renew", "")
	if rec.Code != 201 {
		t.Fatalf("renew: %d %s", rec.Code, rec.Body.String())
	}
	blk, _ = pem.Decode(rec.Body.Bytes())
	if csr, err = x509.ParseCertificateRequest(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	if rec := f.do(user, "PUT", loc, signed(f.certs.userSigner)); rec.Code != 200 {
		t.Fatalf("PUT after renew: %d %s", rec.Code, rec.Body.String())
	}
	if rec := f.do(user, "POST", loc+"?action=delete", ""); rec.Code != 200 {
		t.Errorf("delete: %d", rec.Code)
	}
	if rec := f.do(user, "POST", loc+"?action=get", ""); rec.Code != 404 {
		t.Errorf("get after delete: %d", rec.Code)
	}
}

func TestLimitsAndRestart(t *testing.T) {
	f := newFixture(t)
	user := caller{chain: f.certs.userProxy}
	// A description body over the limit is refused before it is read.
	big := "&(executable=/bin/true)(arguments=\"" + strings.Repeat("x", MaxDescriptionBytes) + "\")"
	if rec := f.do(user, "POST", APIPath+"/jobs?action=new", big); rec.Code != 413 {
		t.Errorf("oversized description: %d, want 413", rec.Code)
	}
	id := f.submit(user, job)
	for _, in := range []string{"run.sh", "in.dat"} {
		if rec := f.do(user, "PUT", APIPath+"/jobs/"+id+"/session/"+in, "data of "+in); rec.Code != 200 {
			t.Fatalf("PUT %s: %d", in, rec.Code)
		}
	}
	// A new gateway (a restart, or a second replica) over the same store and API server serves the same
	// session directory.
	again, err := New(f.srv.opts)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = again
	if rec := f.do(user, "GET", APIPath+"/jobs/"+id+"/session/in.dat", ""); rec.Code != 200 || rec.Body.String() != "data of in.dat" {
		t.Errorf("after restart GET in.dat: %d %q", rec.Code, rec.Body.String())
	}
}

func TestMetricsRoutes(t *testing.T) {
	cases := []struct {
		method, target, want string
	}{
		{"GET", RESTPath, "versions"},
		{"GET", APIPath + "/info?schema=glue2", "info"},
		{"GET", APIPath + "/jobs", "jobs"},
		{"POST", APIPath + "/jobs?action=new", "jobs:new"},
		{"POST", APIPath + "/jobs?action=" + strings.Repeat("z", 300), "jobs:unknown"},
		{"PUT", APIPath + "/jobs/atlas.gj-1/session/a/b", "session"},
		{"GET", APIPath + "/jobs/atlas.gj-1/diagnose/errors", "diagnose"},
		{"PUT", APIPath + "/delegations/abc", "delegations"},
		{"POST", BasePath, "other"},
	}
	for _, tc := range cases {
		if got := route(httptest.NewRequest(tc.method, tc.target, nil)); got != tc.want {
			t.Errorf("route(%s %s) = %q, want %q", tc.method, tc.target, got, tc.want)
		}
	}
}

// TestJSONClients follows the pyarcrest/aCT path: JSON answers (root dropped, a single element not an
// array), JSON bodies for bulk actions.
func TestJSONClients(t *testing.T) {
	f := newFixture(t)
	user := caller{chain: f.certs.userProxy}
	rec := f.do(user, "POST", APIPath+"/jobs?action=new", adlFromArcsubNoDelegation, "Content-Type", "application/xml", "Accept", "application/json")
	var one struct {
		Job struct {
			Code  string `json:"status-code"`
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"job"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &one); err != nil || rec.Code != 201 || one.Job.Code != "201" || one.Job.State != "ACCEPTING" {
		t.Fatalf("JSON submit: %d %s (%v)", rec.Code, rec.Body.String(), err)
	}
	id2 := f.submit(user, `&(executable="/bin/true")`)
	rec = f.do(user, "POST", APIPath+"/jobs?action=info", `{"job":[{"id":"`+one.Job.ID+`"},{"id":"`+id2+`"}]}`,
		"Content-Type", "application/json", "Accept", "application/json")
	var many struct {
		Job []struct {
			ID   string `json:"id"`
			Info struct {
				Activity struct {
					State []string `json:"State"`
					Queue string   `json:"Queue"`
				} `json:"ComputingActivity"`
			} `json:"info_document"`
		} `json:"job"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &many); err != nil || len(many.Job) != 2 {
		t.Fatalf("JSON info: %s (%v)", rec.Body.String(), err)
	}
	if a := many.Job[0].Info.Activity; a.Queue != "atlas-prod" || len(a.State) != 3 || a.State[0] != "arcrest:ACCEPTING" {
		t.Errorf("JSON info activity: %+v", a)
	}
	rec = f.do(user, "GET", APIPath+"/jobs", "", "Accept", "application/json")
	var list struct {
		Job []struct {
			ID string `json:"id"`
		} `json:"job"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list.Job) != 2 {
		t.Errorf("JSON listing: %s (%v)", rec.Body.String(), err)
	}
}
