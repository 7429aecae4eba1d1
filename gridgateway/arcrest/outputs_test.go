package arcrest

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/session"
)

// TestOutputStore reads a FileStore through the gRPC API's view: recursive listing, and files only inside
// the job's session directory.
func TestOutputStore(t *testing.T) {
	dir := t.TempDir()
	fstore, err := session.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	job, other := session.JobKey{Namespace: "atlas", Name: "gj-1"}, session.JobKey{Namespace: "atlas", Name: "gj-2"}
	for _, f := range []struct {
		key        session.JobKey
		area, name string
	}{{job, session.AreaSession, "stdout"}, {job, session.AreaSession, "out/sub/result.root"}, {job, session.AreaControl, "errors"}, {other, session.AreaSession, "secret"}} {
		if _, err := fstore.Put(f.key, f.area, f.name, strings.NewReader("data of "+f.name), 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	// A symbolic link the job left, pointing at another job's session directory.
	if err := os.Symlink(filepath.Join(dir, "atlas", "gj-2", "session", "secret"), filepath.Join(dir, "atlas", "gj-1", "session", "escape")); err != nil {
		t.Fatal(err)
	}
	st := session.OutputStore(fstore)
	ctx := context.Background()

	files, err := st.ListFiles(ctx, "atlas", "gj-1", 100)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	// The symbolic link is listed (it is in the directory) but cannot be opened (below).
	if diff := cmp.Diff([]string{"escape", "out/sub/result.root", "stdout"}, paths); diff != "" {
		t.Errorf("listing (-want,+got):\n%s", diff)
	}
	if _, err := st.ListFiles(ctx, "atlas", "gj-1", 1); err == nil {
		t.Error("listing beyond the limit: no error")
	}
	if files, err := st.ListFiles(ctx, "atlas", "gj-never", 100); err != nil || len(files) != 0 {
		t.Errorf("job without a session directory: %v, %v; want an empty list", files, err)
	}

	cases := []struct {
		name, path string
		want       string
		wantErr    error
	}{
		{name: "file", path: "stdout", want: "data of stdout"},
		{name: "nested file", path: "out/sub/result.root", want: "data of out/sub/result.root"},
		{name: "parent", path: "../gj-2/session/secret", wantErr: session.ErrBadOutputPath},
		{name: "control area", path: "../control/errors", wantErr: session.ErrBadOutputPath},
		{name: "absolute", path: "/etc/passwd", wantErr: session.ErrBadOutputPath},
		{name: "empty", path: "", wantErr: session.ErrBadOutputPath},
		{name: "directory", path: "out", wantErr: session.ErrOutputIsDir},
		{name: "missing", path: "nothing", wantErr: fs.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, size, err := st.OpenFile(ctx, "atlas", "gj-1", tc.path)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("OpenFile(%q) = %v, want %v", tc.path, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			b, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want || size != int64(len(tc.want)) {
				t.Errorf("OpenFile(%q) = %q (size %d), want %q", tc.path, b, size, tc.want)
			}
		})
	}
	t.Run("symbolic link out of the job", func(t *testing.T) {
		r, _, err := st.OpenFile(ctx, "atlas", "gj-1", "escape")
		if err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			t.Fatalf("opened a link to another job's file: %q", b)
		}
	})
}

// TestCollectGRPCJob: the collector fills the session directory of a job submitted over gRPC (no ARC
// label, no annotations) under the fixed names stdout and stderr, and marks it collected.
func TestCollectGRPCJob(t *testing.T) {
	f := newFixture(t)
	f.srv.opts.Simulation = true
	end := time.Now()
	gj := &kubehtcv1alpha1.GridJob{
		ObjectMeta: metav1.ObjectMeta{Name: "gj-grpc", Namespace: "atlas"},
		Spec: kubehtcv1alpha1.GridJobSpec{Owner: kubehtcv1alpha1.GridJobOwner{Issuer: "https://issuer.test/", Subject: "pilot"}, VO: "atlas",
			Description: kubehtcv1alpha1.GridJobDescription{Image: "pilot:1", Command: []string{"run.sh"}, Outputs: []string{"result.dat"}}},
	}
	ctx := context.Background()
	if err := f.client.Create(ctx, gj); err != nil {
		t.Fatal(err)
	}
	gj.Status = kubehtcv1alpha1.GridJobStatus{State: kubehtcv1alpha1.StateFailed, PodName: "gj-grpc", Node: "cpu-a-0", ExitCode: ptr.To[int32](3),
		FailureReason: "NonZeroExitCode", StartTime: &metav1.Time{Time: end.Add(-time.Minute)}, EndTime: &metav1.Time{Time: end}}
	if err := f.client.Status().Update(ctx, gj); err != nil {
		t.Fatal(err)
	}
	f.srv.maybeCollect(ctx, gj.DeepCopy(), nil)
	id := "atlas.gj-grpc"
	if got := f.session(id, session.GRPCStdout); !strings.Contains(got, "kubehtc simulated run") || !strings.Contains(got, "exit code: 3") {
		t.Errorf("stdout = %q, want the simulated record with the exit code", got)
	}
	if got := f.session(id, session.GRPCStderr); !strings.Contains(got, "ended FAILED (NonZeroExitCode)") {
		t.Errorf("stderr = %q, want the failure", got)
	}
	if got := f.session(id, "result.dat"); !strings.Contains(got, "placeholder") {
		t.Errorf("result.dat = %q, want the placeholder", got)
	}
	var stored kubehtcv1alpha1.GridJob
	if err := f.client.Get(ctx, client.ObjectKeyFromObject(gj), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Annotations[kubehtcv1alpha1.OutputsCollectedAnnotation] == "" {
		t.Errorf("annotations %v: the job is not marked collected", stored.Annotations)
	}
	// The lifetime cleanup keeps a gRPC job and its files (only ARC jobs expire; gRPC clients Clean).
	f.srv.opts.Now = func() time.Time { return end.Add(365 * 24 * time.Hour) }
	f.srv.expire(ctx)
	if err := f.client.Get(ctx, client.ObjectKeyFromObject(gj), &stored); err != nil {
		t.Errorf("after the session lifetime: %v, want the gRPC job kept", err)
	}
	if got := f.session(id, session.GRPCStdout); !strings.Contains(got, "kubehtc simulated run") {
		t.Errorf("after the session lifetime: stdout = %q, want it kept", got)
	}
}
