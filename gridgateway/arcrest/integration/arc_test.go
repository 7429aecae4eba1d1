package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/arcrest"
	"github.com/kubehtc/kubehtc/gridgateway/arcrest/arclocal"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
)

// arcClient runs the real ARC client commands in a scratch HOME with the test PKI.
type arcClient struct {
	t   *testing.T
	dir string
	env []string
}

func newARCClient(t *testing.T) *arcClient {
	t.Helper()
	for _, cmd := range []string{"arcproxy", "arcinfo", "arcsub", "arcstat", "arccat", "arcget", "arckill", "arcclean", "arcrenew", "arcsync"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Fatalf("%s is not installed: run hack/ensure-arc-client.sh (Debian nordugrid-arc-client, nordugrid-arc-plugins-arcrest)", cmd)
		}
	}
	dir := t.TempDir()
	a := &arcClient{t: t, dir: dir}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "X509_") && !strings.HasPrefix(kv, "BEARER_TOKEN") {
			a.env = append(a.env, kv)
		}
	}
	a.env = append(a.env, "HOME="+dir, "X509_CERT_DIR="+gw.CertDir, "X509_USER_PROXY="+filepath.Join(dir, "proxy.pem"))
	return a
}

// run runs an ARC command in the scratch directory and returns its exit code and combined output.
func (a *arcClient) run(extraEnv []string, args ...string) (int, string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir, cmd.Env = a.dir, append(append([]string{}, a.env...), extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			a.t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	a.t.Logf("$ %s (exit %d)\n%s", strings.Join(args, " "), code, out.String())
	return code, out.String()
}

// ok runs a command that must succeed and print want.
func (a *arcClient) ok(extraEnv []string, want string, args ...string) string {
	a.t.Helper()
	code, out := a.run(extraEnv, args...)
	if code != 0 || !strings.Contains(out, want) {
		a.t.Fatalf("%s: exit %d, want 0 and output containing %q", strings.Join(args, " "), code, want)
	}
	return out
}

func (a *arcClient) write(name, content string) {
	a.t.Helper()
	if err := os.WriteFile(filepath.Join(a.dir, name), []byte(content), 0o644); err != nil {
		a.t.Fatal(err)
	}
}

var submitted = regexp.MustCompile(`Job submitted with jobid: (\S+)`)

// submit runs arcsub and returns the job URL.
func (a *arcClient) submit(extraEnv []string, args ...string) string {
	a.t.Helper()
	out := a.ok(extraEnv, "Job submitted with jobid:", append([]string{"arcsub", "-C", gw.URL, "-T", "arcrest"}, args...)...)
	return submitted.FindStringSubmatch(out)[1]
}

// state is the state arcstat prints for one job.
func (a *arcClient) state(extraEnv []string, jobURL string) string {
	a.t.Helper()
	_, out := a.run(extraEnv, "arcstat", jobURL)
	m := regexp.MustCompile(`(?m)^ State: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

func gridJobOf(t *testing.T, jobURL string) (client.ObjectKey, *kubehtcv1alpha1.GridJob) {
	t.Helper()
	id := jobURL[strings.LastIndex(jobURL, "/")+1:]
	ns, name, _ := strings.Cut(id, ".")
	key := client.ObjectKey{Namespace: ns, Name: name}
	var gj kubehtcv1alpha1.GridJob
	if err := kc.Get(context.Background(), key, &gj); err != nil {
		t.Fatalf("GridJob of %s: %v", jobURL, err)
	}
	return key, &gj
}

const pilotXRSL = `&(executable="run.sh")(arguments="pilot")(jobname="%NAME%")(stdout="out.txt")(stderr="err.txt")
(inputfiles=("run.sh" "")("input.dat" ""))(outputfiles=("result.dat" ""))
(runtimeenvironment="ENV/PROXY")(memory=1000)(walltime="30 min")%EXTRA%
(environment=("KUBEHTC_SIM_RUNTIME" "%RUNTIME%"))`

func pilot(name, runtime, extra string) string {
	return strings.NewReplacer("%NAME%", name, "%RUNTIME%", runtime, "%EXTRA%", extra).Replace(pilotXRSL)
}

// TestRealARCClient drives the gateway with Debian's ARC 6.17 client, as a pilot factory would: proxy,
// information, brokered and direct submission with uploaded inputs, status, stdout, output retrieval,
// renewal, kill, resynchronisation, clean, and the token mode.
func TestRealARCClient(t *testing.T) {
	clustertest.Require(t, cluster)
	ctx := context.Background()
	a := newARCClient(t)
	a.ok(nil, "Proxy generation succeeded", "arcproxy", "-C", gw.UserCertFile, "-K", gw.UserKeyFile, "-P", filepath.Join(a.dir, "proxy.pem"), "-T", gw.CertDir)
	a.ok(nil, "Computing service: kubehtc-test (production)", "arcinfo", "-c", gw.URL)

	const inputData = "input data uploaded by arcsub\n"
	a.write("run.sh", "#!/bin/sh\necho pilot running\n")
	a.write("input.dat", inputData)
	// gmlog: the job's log directory, which arcget fetches as a subdirectory (PROPFIND depth 0, then 1).
	a.write("short.xrsl", pilot("arc-it-short", "3s", `(gmlog="gmlog")`))
	// disk=100 makes arcsub's brokering check MaxDiskSpace/WorkingAreaFree in the GLUE2 document.
	a.write("long.xrsl", pilot("arc-it-long", "1h", "(disk=100)"))

	infos := gw.Requests("info")
	short := a.submit(nil, "short.xrsl") // with brokering: GET info first
	long := a.submit(nil, "long.xrsl")
	if got := gw.Requests("info") - infos; got != 2 {
		t.Errorf("brokered arcsub fetched the GLUE2 document %v times for two jobs, want 2", got)
	}
	dn := "/O=kubehtc test/OU=users/CN=" + arclocal.UserCN
	shortKey, gj := gridJobOf(t, short)
	if gj.Spec.Owner.DN != dn || gj.Spec.Queue != arclocal.Queue || gj.Spec.CredentialSecretName == "" {
		t.Errorf("GridJob of the short job: owner %+v queue %q credential %q; want DN %q, queue %s, a delegated credential", gj.Spec.Owner, gj.Spec.Queue, gj.Spec.CredentialSecretName, dn, arclocal.Queue)
	}
	// arcsub uploaded both inputs: the job is ready and the store holds them.
	if got := gj.Annotations[translate.SessionInputsAnnotation]; got != translate.SessionInputsReady {
		t.Errorf("after arcsub the short job's inputs are %q, want %q", got, translate.SessionInputsReady)
	}
	if b, err := os.ReadFile(filepath.Join(gw.StoreDir, shortKey.Namespace, shortKey.Name, "session", "input.dat")); err != nil || string(b) != inputData {
		t.Errorf("uploaded input.dat in the session store: %q, %v", b, err)
	}

	clustertest.Poll(t, 3*time.Minute, func(context.Context) (bool, error) { return a.state(nil, short) == "Finished", nil })
	out := a.ok(nil, "kubehtc simulated run", "arccat", short)
	for _, want := range []string{"command: ./run.sh pilot", "state: FINISHED", "exit code: 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("arccat output lacks %q", want)
		}
	}
	a.ok(nil, "successfully retrieved: 1", "arcget", "-k", "-D", "downloads", short)
	got := filepath.Join(a.dir, "downloads", shortKey.Namespace+"."+shortKey.Name)
	for name, want := range map[string]string{"input.dat": inputData, "out.txt": "exit code: 0", "result.dat": "placeholder for the output", "err.txt": "", "run.sh": "pilot running",
		"gmlog/errors": "job ended FINISHED"} {
		b, err := os.ReadFile(filepath.Join(got, name))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("arcget: %s = %q, %v; want it containing %q", name, b, err, want)
		}
	}

	// Renewal: a new key and chain in the delegation Secret the long job mounts.
	longKey, longJob := gridJobOf(t, long)
	var before corev1.Secret
	if err := kc.Get(ctx, client.ObjectKey{Namespace: longKey.Namespace, Name: longJob.Spec.CredentialSecretName}, &before); err != nil {
		t.Fatal(err)
	}
	a.ok(nil, "renewed: 1", "arcrenew", long)
	var after corev1.Secret
	if err := kc.Get(ctx, client.ObjectKey{Namespace: longKey.Namespace, Name: longJob.Spec.CredentialSecretName}, &after); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before.Data[translate.CredentialKey], after.Data[translate.CredentialKey]) || len(after.Data[arcrest.PendingKeyKey]) != 0 {
		t.Error("arcrenew did not replace the delegated credential")
	}

	a.ok(nil, "successfully killed: 1", "arckill", "-k", long)
	clustertest.Poll(t, 3*time.Minute, func(context.Context) (bool, error) { return a.state(nil, long) == "Killed", nil })
	if _, gj := gridJobOf(t, long); gj.Status.State != kubehtcv1alpha1.StateKilled {
		t.Errorf("GridJob of the killed job is %s", gj.Status.State)
	}

	// A lost job list comes back from the service.
	if err := os.Remove(filepath.Join(a.dir, ".arc", "jobs.dat")); err != nil {
		t.Fatal(err)
	}
	a.ok(nil, "Total number of jobs found: 2", "arcsync", "-f", "-C", gw.URL, "-T", "arcrest")
	out = a.ok(nil, "Status of 2 jobs", "arcstat", "-a")
	if !strings.Contains(out, short) || !strings.Contains(out, long) {
		t.Errorf("after arcsync arcstat -a does not list both jobs")
	}

	a.ok(nil, "deleted: 2", "arcclean", "-a")
	for _, key := range []client.ObjectKey{shortKey, longKey} {
		clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
			return apierrors.IsNotFound(kc.Get(ctx, key, &kubehtcv1alpha1.GridJob{})), nil
		})
		if _, err := os.Stat(filepath.Join(gw.StoreDir, key.Namespace, key.Name)); !os.IsNotExist(err) {
			t.Errorf("session directory of %s after arcclean: %v", key, err)
		}
	}

	// Token mode: the client sends the bearer token and no certificate (it still needs the proxy), and
	// the job belongs to the token's subject, invisible to the certificate identity.
	tok, err := gw.Token("pilot-factory", arclocal.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	bearer := []string{"BEARER_TOKEN=" + tok}
	a.write("token.xrsl", pilot("arc-it-token", "2s", ""))
	infos = gw.Requests("info")
	tj := a.submit(bearer, "-Q", "NONE", "token.xrsl")
	if got := gw.Requests("info") - infos; got != 0 {
		t.Errorf("arcsub -Q NONE fetched the GLUE2 document %v times, want none", got)
	}
	if _, gj := gridJobOf(t, tj); gj.Spec.Owner.Subject != "pilot-factory" || gj.Spec.Owner.Issuer != arclocal.Issuer || gj.Spec.Owner.DN != "" {
		t.Errorf("token job owner %+v", gj.Spec.Owner)
	}
	clustertest.Poll(t, 3*time.Minute, func(context.Context) (bool, error) { return a.state(bearer, tj) == "Finished", nil })
	if st := a.state(nil, tj); st == "Finished" {
		t.Error("the certificate identity sees the token identity's job")
	}
	a.ok(bearer, "deleted: 1", "arcclean", tj)

	// A description the gateway refuses fails the submission with the reason, and creates nothing.
	a.write("bad.xrsl", `&(executable="/bin/true")(queue="no-such-queue")`)
	if code, out := a.run(nil, "arcsub", "-d", "VERBOSE", "-Q", "NONE", "-C", gw.URL, "-T", "arcrest", "bad.xrsl"); code == 0 || strings.Contains(out, "Job submitted") || !strings.Contains(out, `unknown queue "no-such-queue"`) {
		t.Errorf("arcsub of a description for an unknown queue: exit %d; want a failure with the gateway's reason", code)
	}
}
