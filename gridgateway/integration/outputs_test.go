package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	"github.com/kubehtc/kubehtc/gridgateway/arcrest"
	"github.com/kubehtc/kubehtc/gridgateway/session"
)

// download reads a whole file through GetOutput, checking that chunks come in order.
func download(ctx context.Context, c gatewayv1.GatewayClient, id, path string) ([]byte, error) {
	st, err := c.GetOutput(ctx, &gatewayv1.GetOutputRequest{Id: id, Path: path})
	if err != nil {
		return nil, err
	}
	var got []byte
	for {
		ch, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return nil, err
		}
		if ch.GetOffset() != int64(len(got)) {
			return nil, fmt.Errorf("chunk at offset %d after %d bytes", ch.GetOffset(), len(got))
		}
		got = append(got, ch.GetData()...)
	}
}

// TestOutputsOverGRPC submits a pilot over gRPC to a gateway with a session store and the output
// collector (as kubehtc-gateway runs them with -arc-session-dir), waits until it is FINISHED, and lists
// and downloads its stdout — on the local cluster the simulation's record of the Pod. Another VO's caller
// and another owner of the same VO are refused.
func TestOutputsOverGRPC(t *testing.T) {
	requireCluster(t)
	namespace(t, "atlas-gw")
	namespace(t, "cms-gw")
	atlasIss, cmsIss := newIssuer(t, atlasIssuer), newIssuer(t, cmsIssuer)
	store, err := session.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := startGatewayWithOutputs(t, session.OutputStore(store), atlasIss, cmsIss)
	collector, err := arcrest.New(arcrest.Options{Site: g.site, Auth: g.auth, Client: kc, Store: store, Simulation: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go collector.RunCollector(ctx, nil)

	owner := g.client(atlasIss.token(t, "outputs-pilot", allScopes))
	desc := pilotDescription("atlas-prod", "1s")
	desc.Outputs = []string{"result.json"}
	j, err := owner.Submit(ctx, &gatewayv1.SubmitRequest{ClientKey: "outputs-1", Description: desc})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "job "+j.Id+" FINISHED", func(ctx context.Context) (bool, error) {
		j, err = owner.Get(ctx, &gatewayv1.GetRequest{Id: j.Id})
		if err != nil {
			return false, err
		}
		if j.State == string(kubehtcv1alpha1.StateFailed) || j.State == string(kubehtcv1alpha1.StateKilled) {
			return false, fmt.Errorf("job ended %s: %s %s", j.State, j.FailureReason, j.Message)
		}
		return j.State == string(kubehtcv1alpha1.StateFinished), nil
	})
	var list *gatewayv1.ListOutputsResponse
	poll(t, time.Minute, "outputs of "+j.Id+" collected", func(ctx context.Context) (bool, error) {
		list, err = owner.ListOutputs(ctx, &gatewayv1.ListOutputsRequest{Id: j.Id})
		return err == nil && list.GetComplete(), err
	})
	type file struct {
		Path     string
		Declared bool
	}
	var files []file
	for _, f := range list.GetFiles() {
		files = append(files, file{f.GetPath(), f.GetDeclared()})
	}
	if diff := cmp.Diff([]file{{"result.json", true}, {"stderr", false}, {"stdout", false}}, files); diff != "" {
		t.Errorf("ListOutputs (-want,+got):\n%s", diff)
	}

	stdout, err := download(ctx, owner, j.Id, "stdout")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kubehtc simulated run", "job: " + j.Id, "node: " + j.Node, "state: FINISHED", "exit code: 0", "command: runpilot2-wrapper.sh"} {
		if !strings.Contains(string(stdout), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	for _, f := range list.GetFiles() {
		if f.GetPath() == "stdout" && f.GetSize() != int64(len(stdout)) {
			t.Errorf("listed size %d, downloaded %d bytes", f.GetSize(), len(stdout))
		}
	}
	// The ARC REST interface serves the same bytes: it reads the same store.
	ns, name, _ := strings.Cut(j.Id, ".")
	r, err := store.Open(session.JobKey{Namespace: ns, Name: name}, session.AreaSession, "stdout")
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(r)
	r.Close()
	if string(stored) != string(stdout) {
		t.Errorf("gRPC download differs from the session store:\n%s\n---\n%s", stdout, stored)
	}

	cms := g.client(cmsIss.token(t, "outputs-pilot", allScopes))
	otherOwner := g.client(atlasIss.token(t, "someone-else", allScopes))
	for _, tc := range []struct {
		name string
		c    gatewayv1.GatewayClient
		path string
		want codes.Code
	}{
		{"another VO's caller", cms, "stdout", codes.PermissionDenied},
		{"another owner in the same VO", otherOwner, "stdout", codes.PermissionDenied},
		{"path out of the session directory", owner, "../../cms-gw", codes.InvalidArgument},
		{"missing file", owner, "nothing", codes.NotFound},
	} {
		if _, err := download(ctx, tc.c, j.Id, tc.path); status.Code(err) != tc.want {
			t.Errorf("%s: GetOutput = %v, want %v", tc.name, err, tc.want)
		}
		if tc.path == "stdout" {
			if _, err := tc.c.ListOutputs(ctx, &gatewayv1.ListOutputsRequest{Id: j.Id}); status.Code(err) != tc.want {
				t.Errorf("%s: ListOutputs = %v, want %v", tc.name, err, tc.want)
			}
		}
	}
}
