package grpcapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/jobs"
	"github.com/kubehtc/kubehtc/gridgateway/session"
)

// memStore is an in-memory OutputStore: files by "namespace/name" then path. Paths are checked by the
// server before they reach a store; the store refuses ".." itself too, as FileStore does.
type memStore map[string]map[string][]byte

var modTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (m memStore) ListFiles(_ context.Context, ns, name string, limit int) ([]session.OutputFile, error) {
	var out []session.OutputFile
	for p, data := range m[ns+"/"+name] {
		out = append(out, session.OutputFile{Path: p, Size: int64(len(data)), Modified: modTime})
	}
	if len(out) > limit {
		return nil, fmt.Errorf("more than %d files", limit)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (m memStore) OpenFile(_ context.Context, ns, name, p string) (io.ReadCloser, int64, error) {
	if strings.Contains(p, "..") {
		return nil, 0, session.ErrBadOutputPath
	}
	for q := range m[ns+"/"+name] {
		if strings.HasPrefix(q, p+"/") {
			return nil, 0, session.ErrOutputIsDir
		}
	}
	data, ok := m[ns+"/"+name][p]
	if !ok {
		return nil, 0, fs.ErrNotExist
	}
	return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
}

const (
	outAtlasIssuer = "https://atlas.example.org/"
	outCMSIssuer   = "https://cms.example.org/"
	outAudience    = "https://gw.example.org"
)

type outIssuer struct {
	url    string
	signer jose.Signer
	public jose.JSONWebKey
}

func newOutIssuer(t *testing.T, url string) *outIssuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: "k"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &outIssuer{url: url, signer: signer, public: jose.JSONWebKey{Key: &k.PublicKey, KeyID: "k", Algorithm: string(jose.ES256), Use: "sig"}}
}

func (is *outIssuer) token(t *testing.T, sub, scope string) string {
	t.Helper()
	now := time.Now()
	raw, err := jwt.Signed(is.signer).Claims(jwt.Claims{Issuer: is.url, Subject: sub, Audience: jwt.Audience{outAudience},
		Expiry: jwt.NewNumericDate(now.Add(time.Hour)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute))}).
		Claims(map[string]any{"wlcg.ver": "1.0", "scope": scope}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestOutputs runs ListOutputs and GetOutput through the gRPC server (authentication, scopes) on a fake
// API server and an in-memory session store.
func TestOutputs(t *testing.T) {
	site, err := config.Parse([]byte(`
audiences: [https://gw.example.org]
issuers:
- {url: "https://atlas.example.org/", jwksFile: unused}
- {url: "https://cms.example.org/", jwksFile: unused}
vos:
- {name: atlas, namespace: atlas, tokens: [{issuer: "https://atlas.example.org/"}]}
- {name: cms, namespace: cms, tokens: [{issuer: "https://cms.example.org/"}]}
queues:
- {name: atlas-prod, vos: [atlas], image: "pilot:1"}
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
	alice := kubehtcv1alpha1.GridJobOwner{Issuer: outAtlasIssuer, Subject: "alice"}
	bob := kubehtcv1alpha1.GridJobOwner{Issuer: outAtlasIssuer, Subject: "bob"}
	job := func(owner kubehtcv1alpha1.GridJobOwner, ns, key string, state kubehtcv1alpha1.GridJobState, collected bool) *kubehtcv1alpha1.GridJob {
		gj := &kubehtcv1alpha1.GridJob{
			ObjectMeta: metav1.ObjectMeta{Name: jobs.Name(owner, key), Namespace: ns},
			Spec:       kubehtcv1alpha1.GridJobSpec{Owner: owner, ClientKey: key, Description: kubehtcv1alpha1.GridJobDescription{Outputs: []string{"out/result.root"}}},
			Status:     kubehtcv1alpha1.GridJobStatus{State: state},
		}
		if collected {
			gj.Annotations = map[string]string{kubehtcv1alpha1.OutputsCollectedAnnotation: "2026-01-02T03:04:05Z"}
		}
		return gj
	}
	done := job(alice, "atlas", "done", kubehtcv1alpha1.StateFinished, true)
	running := job(alice, "atlas", "running", kubehtcv1alpha1.StateRunning, false)
	bobs := job(bob, "atlas", "done", kubehtcv1alpha1.StateFinished, true)
	big := bytes.Repeat([]byte("0123456789abcdef"), (OutputChunkBytes*2+1000)/16) // three chunks
	store := memStore{
		"atlas/" + done.Name: {"stdout": []byte("hello\n"), "stderr": {}, "out/result.root": big, "dir/x": []byte("x")},
		"atlas/" + bobs.Name: {"stdout": []byte("bob's\n")},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(done, running, bobs).Build()
	atlasIss, cmsIss := newOutIssuer(t, outAtlasIssuer), newOutIssuer(t, outCMSIssuer)
	a := auth.NewWithKeys(site, map[string]*jose.JSONWebKeySet{
		outAtlasIssuer: {Keys: []jose.JSONWebKey{atlasIss.public}}, outCMSIssuer: {Keys: []jose.JSONWebKey{cmsIss.public}}})

	serve := func(s *Server) gatewayv1.GatewayClient {
		g := NewGRPCServer(s, a, nil, nil)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = g.Serve(lis) }()
		t.Cleanup(g.Stop)
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return gatewayv1.NewGatewayClient(conn)
	}
	withStore := serve(&Server{Client: c, Site: site, Outputs: store, MaxOutputBytes: int64(len(big))})
	capped := serve(&Server{Client: c, Site: site, Outputs: store, MaxOutputBytes: 5})
	noStore := serve(&Server{Client: c, Site: site})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	as := func(is *outIssuer, sub, scope string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+is.token(t, sub, scope))
	}
	aliceCtx := as(atlasIss, "alice", "compute.read")
	id := func(gj *kubehtcv1alpha1.GridJob) string { return jobs.ID(gj) }
	download := func(gc gatewayv1.GatewayClient, ctx context.Context, jobID, p string) ([]byte, error) {
		st, err := gc.GetOutput(ctx, &gatewayv1.GetOutputRequest{Id: jobID, Path: p})
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
			if ch.GetOffset() != int64(len(got)) || len(ch.GetData()) > OutputChunkBytes {
				return nil, fmt.Errorf("chunk at offset %d of %d bytes after %d bytes", ch.GetOffset(), len(ch.GetData()), len(got))
			}
			got = append(got, ch.GetData()...)
		}
	}

	t.Run("list", func(t *testing.T) {
		type file struct {
			Path     string
			Size     int64
			Declared bool
		}
		cases := []struct {
			name         string
			jobID        string
			want         []file
			wantComplete bool
		}{
			{name: "collected job", jobID: id(done), wantComplete: true, want: []file{
				{Path: "dir/x", Size: 1}, {Path: "out/result.root", Size: int64(len(big)), Declared: true}, {Path: "stderr"}, {Path: "stdout", Size: 6}}},
			{name: "running job, nothing stored yet", jobID: id(running)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := withStore.ListOutputs(aliceCtx, &gatewayv1.ListOutputsRequest{Id: tc.jobID})
				if err != nil {
					t.Fatal(err)
				}
				var got []file
				for _, f := range resp.GetFiles() {
					got = append(got, file{Path: f.GetPath(), Size: f.GetSize(), Declared: f.GetDeclared()})
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("files (-want,+got):\n%s", diff)
				}
				if resp.GetComplete() != tc.wantComplete {
					t.Errorf("complete = %v, want %v", resp.GetComplete(), tc.wantComplete)
				}
			})
		}
	})

	t.Run("download", func(t *testing.T) {
		for _, tc := range []struct {
			name, path string
			want       []byte
		}{
			{name: "small file", path: "stdout", want: []byte("hello\n")},
			{name: "empty file", path: "stderr", want: nil},
			{name: "several chunks", path: "out/result.root", want: big},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := download(withStore, aliceCtx, id(done), tc.path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tc.want) {
					t.Errorf("downloaded %d bytes %.40q, want %d bytes %.40q", len(got), got, len(tc.want), tc.want)
				}
			})
		}
	})

	t.Run("errors", func(t *testing.T) {
		unknown := job(alice, "atlas", "never-submitted", "", false)
		cases := []struct {
			name   string
			client gatewayv1.GatewayClient
			ctx    context.Context
			jobID  string
			path   string
			want   codes.Code
		}{
			{"parent directory", withStore, aliceCtx, id(done), "../" + bobs.Name + "/session/stdout", codes.InvalidArgument},
			{"climbing inside the path", withStore, aliceCtx, id(done), "out/../../x", codes.InvalidArgument},
			{"absolute path", withStore, aliceCtx, id(done), "/etc/passwd", codes.InvalidArgument},
			{"empty path", withStore, aliceCtx, id(done), "", codes.InvalidArgument},
			{"dot segment", withStore, aliceCtx, id(done), "./stdout", codes.InvalidArgument},
			{"backslash", withStore, aliceCtx, id(done), `..\stdout`, codes.InvalidArgument},
			{"directory", withStore, aliceCtx, id(done), "dir", codes.InvalidArgument},
			{"missing file", withStore, aliceCtx, id(done), "nothing-here", codes.NotFound},
			{"unknown job", withStore, aliceCtx, id(unknown), "stdout", codes.NotFound},
			{"malformed id", withStore, aliceCtx, "atlas", "stdout", codes.InvalidArgument},
			{"another owner's job", withStore, aliceCtx, id(bobs), "stdout", codes.PermissionDenied},
			{"another VO's caller", withStore, as(cmsIss, "alice", "compute.read"), id(done), "stdout", codes.PermissionDenied},
			{"token without compute.read", withStore, as(atlasIss, "alice", "compute.create compute.cancel"), id(done), "stdout", codes.PermissionDenied},
			{"no token", withStore, ctx, id(done), "stdout", codes.Unauthenticated},
			{"above the size limit", capped, aliceCtx, id(done), "stdout", codes.ResourceExhausted},
			{"no session store", noStore, aliceCtx, id(done), "stdout", codes.FailedPrecondition},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := download(tc.client, tc.ctx, tc.jobID, tc.path)
				if status.Code(err) != tc.want {
					t.Errorf("GetOutput(%q, %q) = %d bytes, %v; want %v", tc.jobID, tc.path, len(got), err, tc.want)
				}
				if tc.path != "stdout" {
					return // the listing has no path
				}
				_, err = tc.client.ListOutputs(tc.ctx, &gatewayv1.ListOutputsRequest{Id: tc.jobID})
				want := tc.want
				if want == codes.ResourceExhausted {
					want = codes.OK // listing is not limited by the download size
				}
				if status.Code(err) != want {
					t.Errorf("ListOutputs(%q) = %v; want %v", tc.jobID, err, want)
				}
			})
		}
	})
}
