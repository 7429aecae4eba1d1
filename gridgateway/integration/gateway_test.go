package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

func pilotDescription(queue, runtime string) *gatewayv1.JobDescription {
	env := map[string]string{"PILOT_NOKILL": "YES"}
	if runtime != "" {
		env[translate.SimRuntimeEnv] = runtime
	}
	return &gatewayv1.JobDescription{Queue: queue, Cores: 1, MemoryMib: 1000, Executable: "runpilot2-wrapper.sh", Environment: env}
}

// watcher records the states a Watch stream shows per job.
type watcher struct {
	mu     sync.Mutex
	states map[string][]string
}

func watch(t *testing.T, ctx context.Context, c gatewayv1.GatewayClient) *watcher {
	t.Helper()
	stream, err := c.Watch(ctx, &gatewayv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{states: map[string][]string{}}
	go func() {
		for {
			j, err := stream.Recv()
			if err != nil {
				return
			}
			w.mu.Lock()
			if s := w.states[j.Id]; len(s) == 0 || s[len(s)-1] != j.State {
				w.states[j.Id] = append(s, j.State)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watcher) last(id string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.states[id]
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

func TestPilotsFromTwoVOs(t *testing.T) {
	requireCluster(t)
	namespace(t, "atlas-gw")
	namespace(t, "cms-gw")
	atlasIss, cmsIss := newIssuer(t, atlasIssuer), newIssuer(t, cmsIssuer)
	g := startGateway(t, atlasIss, cmsIss)
	atlas := g.client(atlasIss.token(t, "harvester-cern", allScopes))
	cms := g.client(cmsIss.token(t, "glideinwms-fnal", allScopes))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Watches opened before any submission see every state change of every job.
	watchers := map[string]*watcher{"atlas": watch(t, ctx, atlas), "cms": watch(t, ctx, cms)}
	time.Sleep(500 * time.Millisecond) // let both watches be established

	const perVO = 100
	ids := map[string][]string{}
	var mu sync.Mutex
	var eg errgroup.Group
	eg.SetLimit(16)
	for vo, c := range map[string]gatewayv1.GatewayClient{"atlas": atlas, "cms": cms} {
		for i := range perVO {
			eg.Go(func() error {
				j, err := c.Submit(ctx, &gatewayv1.SubmitRequest{ClientKey: fmt.Sprintf("%s-%03d", vo, i), Description: pilotDescription(vo+"-prod", "1s")})
				if err != nil {
					return fmt.Errorf("%s pilot %d: %w", vo, i, err)
				}
				if j.State != string(kubehtcv1alpha1.StateAccepting) || j.Vo != vo+"-gw" {
					return fmt.Errorf("%s pilot %d: submitted job %+v, want ACCEPTING in VO %s-gw", vo, i, j, vo)
				}
				mu.Lock()
				ids[vo] = append(ids[vo], j.Id)
				mu.Unlock()
				return nil
			})
		}
	}
	if err := eg.Wait(); err != nil {
		t.Fatal(err)
	}

	// One more pilot that runs until cancelled.
	long, err := atlas.Submit(ctx, &gatewayv1.SubmitRequest{ClientKey: "atlas-long", Description: pilotDescription("atlas-prod", "")})
	if err != nil {
		t.Fatal(err)
	}

	poll(t, 5*time.Minute, "all 200 pilots FINISHED", func(ctx context.Context) (bool, error) {
		for vo, list := range ids {
			for _, id := range list {
				if s := watchers[vo].last(id); s != string(kubehtcv1alpha1.StateFinished) {
					if s == string(kubehtcv1alpha1.StateFailed) {
						return false, fmt.Errorf("pilot %s FAILED", id)
					}
					return false, nil
				}
			}
		}
		return true, nil
	})
	// Every job's observed states follow its life in order.
	for vo, list := range ids {
		if len(list) != perVO {
			t.Errorf("%s: %d jobs, want %d", vo, len(list), perVO)
		}
		w := watchers[vo]
		w.mu.Lock()
		for _, id := range list {
			seq := w.states[id]
			for i := 1; i < len(seq); i++ {
				if translate.StateRank(kubehtcv1alpha1.GridJobState(seq[i-1])) >= translate.StateRank(kubehtcv1alpha1.GridJobState(seq[i])) {
					t.Errorf("job %s: states %v out of order", id, seq)
					break
				}
			}
			if len(seq) < 3 || seq[0] != string(kubehtcv1alpha1.StateAccepting) {
				t.Errorf("job %s: states %v, want ACCEPTING first and at least three states", id, seq)
			}
		}
		w.mu.Unlock()
	}
	// A VO's list holds its own jobs only; Get returns exit code and node.
	resp, err := cms.List(ctx, &gatewayv1.ListRequest{States: []string{"FINISHED"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Jobs) != perVO {
		t.Errorf("cms lists %d FINISHED jobs, want %d", len(resp.Jobs), perVO)
	}
	j, err := cms.Get(ctx, &gatewayv1.GetRequest{Id: ids["cms"][0]})
	if err != nil {
		t.Fatal(err)
	}
	if j.GetExitCode() != 0 || j.ExitCode == nil || j.Node == "" || j.EndTime == nil || j.StartTime == nil {
		t.Errorf("finished job %+v: want exit code 0, node, start and end times", j)
	}

	// Another VO's job: PermissionDenied for Get, Cancel and Clean.
	for name, call := range map[string]func() error{
		"get":    func() error { _, err := cms.Get(ctx, &gatewayv1.GetRequest{Id: long.Id}); return err },
		"cancel": func() error { _, err := cms.Cancel(ctx, &gatewayv1.CancelRequest{Id: long.Id}); return err },
		"clean":  func() error { _, err := cms.Clean(ctx, &gatewayv1.CleanRequest{Id: long.Id}); return err },
	} {
		if err := call(); status.Code(err) != codes.PermissionDenied {
			t.Errorf("cms %s of an atlas job: %v, want PermissionDenied", name, err)
		}
	}
	// Another user of the same VO: PermissionDenied too.
	other := g.client(atlasIss.token(t, "someone-else", allScopes))
	if _, err := other.Get(ctx, &gatewayv1.GetRequest{Id: long.Id}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("another atlas user's Get: %v, want PermissionDenied", err)
	}

	// Cancel the long pilot: KILLED and its pod gone.
	poll(t, time.Minute, "the long pilot RUNNING", func(context.Context) (bool, error) {
		return watchers["atlas"].last(long.Id) == string(kubehtcv1alpha1.StateRunning), nil
	})
	if _, err := atlas.Clean(ctx, &gatewayv1.CleanRequest{Id: long.Id}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("cleaning a running job: %v, want FailedPrecondition", err)
	}
	if _, err := atlas.Cancel(ctx, &gatewayv1.CancelRequest{Id: long.Id}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the long pilot KILLED", func(context.Context) (bool, error) {
		return watchers["atlas"].last(long.Id) == string(kubehtcv1alpha1.StateKilled), nil
	})
	podName := strings.SplitN(long.Id, ".", 2)[1]
	poll(t, time.Minute, "the killed pilot's pod to be gone", func(ctx context.Context) (bool, error) {
		err := kc.Get(ctx, client.ObjectKey{Namespace: "atlas-gw", Name: podName}, &corev1.Pod{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	// Clean removes it; the watch reports WIPED.
	if _, err := atlas.Clean(ctx, &gatewayv1.CleanRequest{Id: long.Id}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the cleaned pilot WIPED", func(context.Context) (bool, error) {
		return watchers["atlas"].last(long.Id) == string(kubehtcv1alpha1.StateWiped), nil
	})
	if _, err := atlas.Get(ctx, &gatewayv1.GetRequest{Id: long.Id}); status.Code(err) != codes.NotFound {
		t.Errorf("Get of a cleaned job: %v, want NotFound", err)
	}
}

func TestBadRequestsCreateNothing(t *testing.T) {
	requireCluster(t)
	namespace(t, "atlas-gw")
	namespace(t, "cms-gw")
	atlasIss, cmsIss := newIssuer(t, atlasIssuer), newIssuer(t, cmsIssuer)
	g := startGateway(t, atlasIss, cmsIss)
	ctx := context.Background()
	atlas := g.client(atlasIss.token(t, "bad-input-tester", allScopes))
	readOnly := g.client(atlasIss.token(t, "bad-input-tester", "compute.read"))
	anonymous := g.client("")
	stranger := g.client(newIssuer(t, "https://evil.example.org/").token(t, "x", allScopes))
	d := func(mut func(*gatewayv1.JobDescription)) *gatewayv1.JobDescription {
		desc := pilotDescription("atlas-prod", "1s")
		mut(desc)
		return desc
	}
	cases := []struct {
		name string
		c    gatewayv1.GatewayClient
		req  *gatewayv1.SubmitRequest
		code codes.Code
		msg  string
	}{
		{"no description", atlas, &gatewayv1.SubmitRequest{ClientKey: "bad-1"}, codes.InvalidArgument, "description is required"},
		{"no client key", atlas, &gatewayv1.SubmitRequest{Description: d(func(*gatewayv1.JobDescription) {})}, codes.InvalidArgument, "client_key"},
		{"zero-length queue", atlas, &gatewayv1.SubmitRequest{ClientKey: "bad-2", Description: d(func(x *gatewayv1.JobDescription) { x.Queue = "" })}, codes.InvalidArgument, "queue is required"},
		{"unknown queue", atlas, &gatewayv1.SubmitRequest{ClientKey: "bad-3", Description: d(func(x *gatewayv1.JobDescription) { x.Queue = "nope" })}, codes.InvalidArgument, "unknown queue"},
		{"10^6 cores", atlas, &gatewayv1.SubmitRequest{ClientKey: "bad-4", Description: d(func(x *gatewayv1.JobDescription) { x.Cores = 1000000 })}, codes.InvalidArgument, "cores 1000000"},
		{"negative walltime", atlas, &gatewayv1.SubmitRequest{ClientKey: "bad-5", Description: d(func(x *gatewayv1.JobDescription) { x.WallTimeSeconds = -1 })}, codes.InvalidArgument, "wallTimeSeconds -1"},
		{"oversized", atlas, &gatewayv1.SubmitRequest{ClientKey: "bad-6", Description: d(func(x *gatewayv1.JobDescription) {
			x.Arguments = []string{strings.Repeat("a", 100000)}
		})}, codes.InvalidArgument, "arguments[0]"},
		{"too big for gRPC", atlas, &gatewayv1.SubmitRequest{ClientKey: "bad-7", Description: d(func(x *gatewayv1.JobDescription) {
			x.Name = strings.Repeat("n", 5<<20)
		})}, codes.ResourceExhausted, ""},
		{"proxy RTE without credential", atlas, &gatewayv1.SubmitRequest{ClientKey: "bad-8", Description: d(func(x *gatewayv1.JobDescription) {
			x.RuntimeEnvironments = []string{"ENV/PROXY"}
		})}, codes.InvalidArgument, "mount a credential"},
		{"non-PEM proxy", atlas, &gatewayv1.SubmitRequest{ClientKey: "bad-9", Description: d(func(*gatewayv1.JobDescription) {}),
			Credential: &gatewayv1.Credential{Type: gatewayv1.Credential_X509_PROXY, Data: []byte("junk")}}, codes.InvalidArgument, "not PEM"},
		{"other VO's queue", atlas, &gatewayv1.SubmitRequest{ClientKey: "bad-10", Description: d(func(x *gatewayv1.JobDescription) { x.Queue = "cms-prod" })}, codes.PermissionDenied, "may not submit"},
		{"no compute.create", readOnly, &gatewayv1.SubmitRequest{ClientKey: "bad-11", Description: d(func(*gatewayv1.JobDescription) {})}, codes.PermissionDenied, "compute.create"},
		{"no token", anonymous, &gatewayv1.SubmitRequest{ClientKey: "bad-12", Description: d(func(*gatewayv1.JobDescription) {})}, codes.Unauthenticated, ""},
		{"untrusted issuer", stranger, &gatewayv1.SubmitRequest{ClientKey: "bad-13", Description: d(func(*gatewayv1.JobDescription) {})}, codes.Unauthenticated, "not trusted"},
	}
	before := countGridJobs(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Submit(ctx, tc.req)
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Errorf("error %v, want %s containing %q", err, tc.code, tc.msg)
			}
		})
	}
	if after := countGridJobs(t); after != before {
		t.Errorf("%d GridJobs after bad requests, %d before: bad requests created something", after, before)
	}

	// Reusing a client key with another description is refused; the same description is idempotent.
	first, err := atlas.Submit(ctx, &gatewayv1.SubmitRequest{ClientKey: "reuse", Description: pilotDescription("atlas-prod", "1s")})
	if err != nil {
		t.Fatal(err)
	}
	again, err := atlas.Submit(ctx, &gatewayv1.SubmitRequest{ClientKey: "reuse", Description: pilotDescription("atlas-prod", "1s")})
	if err != nil || again.Id != first.Id {
		t.Errorf("second Submit with the same key and description: %v, id %s, want the first job %s", err, again.GetId(), first.Id)
	}
	if _, err := atlas.Submit(ctx, &gatewayv1.SubmitRequest{ClientKey: "reuse", Description: pilotDescription("atlas-prod", "2s")}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("reusing a key for another description: %v, want AlreadyExists", err)
	}
	// Inputs: an undeclared name is refused; the job starts only after its input arrives.
	desc := pilotDescription("atlas-prod", "500ms")
	desc.Inputs = []string{"queuedata.json"}
	withInput, err := atlas.Submit(ctx, &gatewayv1.SubmitRequest{ClientKey: "with-input", Description: desc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := atlas.UploadInput(ctx, &gatewayv1.UploadInputRequest{Id: withInput.Id, Name: "other.json", Data: []byte("{}")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("uploading an undeclared input: %v, want InvalidArgument", err)
	}
	time.Sleep(time.Second)
	if j, err := atlas.Get(ctx, &gatewayv1.GetRequest{Id: withInput.Id}); err != nil || j.State != string(kubehtcv1alpha1.StateAccepting) || j.PodName != "" {
		t.Fatalf("job waiting for its input: %+v (%v), want ACCEPTING without a pod", j, err)
	}
	if _, err := atlas.UploadInput(ctx, &gatewayv1.UploadInputRequest{Id: withInput.Id, Name: "queuedata.json", Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the job with its input FINISHED", func(ctx context.Context) (bool, error) {
		j, err := atlas.Get(ctx, &gatewayv1.GetRequest{Id: withInput.Id})
		return err == nil && j.State == string(kubehtcv1alpha1.StateFinished), nil
	})
}

func countGridJobs(t *testing.T) int {
	t.Helper()
	var list kubehtcv1alpha1.GridJobList
	if err := kc.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}
