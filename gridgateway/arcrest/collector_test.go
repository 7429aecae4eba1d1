package arcrest

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/session"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// endJob sets a job's status as the controller would when its Pod ended.
func (f *fixture) endJob(id string, state kubehtcv1alpha1.GridJobState, exit int32, end time.Time) {
	f.t.Helper()
	gj := f.gridJob(id)
	gj.Status = kubehtcv1alpha1.GridJobStatus{State: state, PodName: gj.Name, Node: "cpu-a-0", ExitCode: ptr.To(exit),
		StartTime: &metav1.Time{Time: end.Add(-time.Minute)}, EndTime: &metav1.Time{Time: end}}
	if state == kubehtcv1alpha1.StateFailed {
		gj.Status.FailureReason, gj.Status.Message = "NonZeroExitCode", "exit code 3"
	}
	if err := f.client.Status().Update(context.Background(), gj); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) session(id, name string) string {
	f.t.Helper()
	ns, n, _ := strings.Cut(id, ".")
	r, err := f.store.Open(session.JobKey{Namespace: ns, Name: n}, session.AreaSession, name)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

func TestCollectSimulatedOutputs(t *testing.T) {
	f := newFixture(t)
	f.srv.opts.Simulation = true
	user := caller{chain: f.certs.userProxy}
	cases := []struct {
		name      string
		state     kubehtcv1alpha1.GridJobState
		exit      int32
		wantOut   []string
		wantErr   string
		wantState string // REST state after collection
	}{
		{name: "finished", state: kubehtcv1alpha1.StateFinished, exit: 0, wantOut: []string{"kubehtc simulated run", "command: ./run.sh", "node: cpu-a-0", "exit code: 0"}, wantState: "FINISHED"},
		{name: "failed", state: kubehtcv1alpha1.StateFailed, exit: 3, wantOut: []string{"state: FAILED", "exit code: 3", "NonZeroExitCode"}, wantErr: "ended FAILED (NonZeroExitCode)", wantState: "FAILED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := f.submit(user, `&(executable="run.sh")(stdout="out.txt")(stderr="err.txt")(outputfiles=("result.dat" ""))`)
			f.endJob(id, tc.state, tc.exit, time.Now())
			// Until its outputs are in place a finished job reports FINISHING, so arcget never sees a
			// half-filled session directory.
			if got := restState(f.gridJob(id)); got != kubehtcv1alpha1.StateFinishing {
				t.Errorf("before collection: %s, want FINISHING", got)
			}
			f.srv.maybeCollect(context.Background(), f.gridJob(id), nil)
			if got := string(restState(f.gridJob(id))); got != tc.wantState {
				t.Errorf("after collection: %s, want %s", got, tc.wantState)
			}
			out := f.session(id, "out.txt")
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("out.txt lacks %q:\n%s", w, out)
				}
			}
			if got := f.session(id, "err.txt"); !strings.Contains(got, tc.wantErr) || (tc.wantErr == "" && got != "") {
				t.Errorf("err.txt = %q, want it containing %q", got, tc.wantErr)
			}
			if got := f.session(id, "result.dat"); !strings.Contains(got, "placeholder for the output \"result.dat\"") {
				t.Errorf("result.dat = %q", got)
			}
			if got := f.do(user, "GET", APIPath+"/jobs/"+id+"/diagnose/errors", "").Body.String(); !strings.Contains(got, "job ended "+string(tc.state)) {
				t.Errorf("diagnose/errors = %q", got)
			}
		})
	}
}

func TestCollectRealOutputs(t *testing.T) {
	f := newFixture(t)
	user := caller{chain: f.certs.userProxy}
	id := f.submit(user, `&(executable="run.sh")(stdout="out.txt")(outputfiles=("result.dat" ""))`)
	f.endJob(id, kubehtcv1alpha1.StateFinished, 0, time.Now())
	var asked []string
	logs := func(_ context.Context, ns, pod string) (io.ReadCloser, error) {
		asked = append(asked, ns+"/"+pod)
		return io.NopCloser(strings.NewReader("pilot says hello\n")), nil
	}
	f.srv.maybeCollect(context.Background(), f.gridJob(id), logs)
	ns, name, _ := strings.Cut(id, ".")
	if diff := cmp.Diff([]string{ns + "/" + name}, asked); diff != "" {
		t.Errorf("logs read (-want,+got):\n%s", diff)
	}
	if got := f.session(id, "out.txt"); got != "pilot says hello\n" {
		t.Errorf("out.txt = %q, want the container log", got)
	}
	// Nothing is invented for a missing declared output: the job log says it is missing.
	if got := f.session(id, "result.dat"); !strings.Contains(got, "no such file") {
		t.Errorf("result.dat = %q, want none", got)
	}
	if got := f.do(user, "GET", APIPath+"/jobs/"+id+"/diagnose/errors", "").Body.String(); !strings.Contains(got, "declared output result.dat is missing") {
		t.Errorf("diagnose/errors = %q", got)
	}
}

func TestExpireSessions(t *testing.T) {
	f := newFixture(t)
	f.srv.opts.SessionLifetime = time.Hour
	user := caller{chain: f.certs.userProxy}
	old := f.submit(user, `&(executable="/bin/true")`)
	recent := f.submit(user, `&(executable="/bin/true")`)
	f.endJob(old, kubehtcv1alpha1.StateFinished, 0, time.Now().Add(-2*time.Hour))
	f.endJob(recent, kubehtcv1alpha1.StateFinished, 0, time.Now().Add(-time.Minute))
	// An orphan directory (its GridJob deleted elsewhere) older than ten minutes goes too.
	orphan := session.JobKey{Namespace: "atlas", Name: "gj-orphan"}
	if _, err := f.store.Put(orphan, session.AreaControl, "errors", strings.NewReader("x"), 10); err != nil {
		t.Fatal(err)
	}
	f.srv.opts.Now = func() time.Time { return time.Now().Add(11 * time.Minute) }
	f.srv.expire(context.Background())
	exists := func(id string) bool {
		ns, name, _ := strings.Cut(id, ".")
		return !apierrors.IsNotFound(f.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &kubehtcv1alpha1.GridJob{}))
	}
	if exists(old) || !exists(recent) {
		t.Errorf("after expiry: old job exists %v (want false), recent job exists %v (want true)", exists(old), exists(recent))
	}
	jobs, err := f.store.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, j := range jobs {
		left = append(left, j.Key.Namespace+"."+j.Key.Name)
	}
	if diff := cmp.Diff([]string{recent}, left); diff != "" {
		t.Errorf("session directories left (-want,+got):\n%s", diff)
	}
}

func TestExpireDelegations(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	mk := func(name string, created time.Time, expires string, complete bool) {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "atlas", Labels: map[string]string{DelegationLabel: name},
			Annotations: map[string]string{}, CreationTimestamp: metav1.Time{Time: created}}, Data: map[string][]byte{}}
		if expires != "" {
			sec.Annotations[DelegationExpiresAnnotation] = expires
		}
		if complete {
			sec.Data[translate.CredentialKey] = []byte("proxy")
		}
		if err := f.client.Create(context.Background(), sec); err != nil {
			t.Fatal(err)
		}
	}
	mk("valid", now.Add(-48*time.Hour), now.Add(time.Hour).Format(time.RFC3339), true)
	mk("expired-recently", now.Add(-48*time.Hour), now.Add(-time.Hour).Format(time.RFC3339), true)
	mk("expired-long-ago", now.Add(-96*time.Hour), now.Add(-48*time.Hour).Format(time.RFC3339), true)
	mk("pending-new", now.Add(-time.Minute), "", false)
	mk("pending-abandoned", now.Add(-2*time.Hour), "", false)
	f.srv.expireDelegations(context.Background())
	var list corev1.SecretList
	if err := f.client.List(context.Background(), &list, client.InNamespace("atlas")); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, s := range list.Items {
		left = append(left, s.Name)
	}
	if diff := cmp.Diff([]string{"expired-recently", "pending-new", "valid"}, left); diff != "" {
		t.Errorf("delegations left (-want,+got):\n%s", diff)
	}
}
