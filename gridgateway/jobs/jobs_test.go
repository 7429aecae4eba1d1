package jobs

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

const site = `
audiences: [https://ce.test/]
issuers: [{url: https://issuer.test/, jwksFile: unused}]
vos:
- {name: atlas, namespace: atlas, tokens: [{issuer: https://issuer.test/}]}
- {name: cms, namespace: cms, tokens: [{issuer: https://issuer.test/}]}
queues:
- {name: atlas-prod, vos: [atlas], image: "pilot:1", defaultWallTimeSeconds: 3600}
- {name: cms-prod, vos: [cms], image: "pilot:1", defaultWallTimeSeconds: 3600}
runtimeEnvironments:
- {name: ENV/PROXY, mountCredential: true}
`

func newService(t *testing.T) *Service {
	t.Helper()
	s, err := config.Parse([]byte(site))
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
	return &Service{Client: fake.NewClientBuilder().WithScheme(scheme).Build(), Site: s}
}

func caller(s *Service, vo, subject string) *auth.Identity {
	v, _ := s.Site.VO(vo)
	return &auth.Identity{Owner: kubehtcv1alpha1.GridJobOwner{Issuer: "https://issuer.test/", Subject: subject}, VO: v}
}

// TestSubmitIsIdempotent: the same owner, key and description give the same GridJob; another description
// under the same key is a conflict; another owner with the same key gets its own job.
func TestSubmitIsIdempotent(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	alice, bob := caller(s, "atlas", "alice"), caller(s, "atlas", "bob")
	desc := translate.Description{Queue: "atlas-prod", Executable: "run.sh", Cores: 2}

	first, created, err := s.Submit(ctx, alice, Submission{ClientKey: "k1", Description: desc})
	if err != nil || !created {
		t.Fatalf("first submission: created %v, %v", created, err)
	}
	again, created, err := s.Submit(ctx, alice, Submission{ClientKey: "k1", Description: desc})
	if err != nil || created || again.Name != first.Name {
		t.Errorf("retry: job %s created %v err %v, want %s, not created", again.Name, created, err, first.Name)
	}
	other := desc
	other.Cores = 4
	if _, _, err := s.Submit(ctx, alice, Submission{ClientKey: "k1", Description: other}); !errors.Is(err, ErrConflict) {
		t.Errorf("key reused for another description: %v, want ErrConflict", err)
	}
	bobs, created, err := s.Submit(ctx, bob, Submission{ClientKey: "k1", Description: desc})
	if err != nil || !created || bobs.Name == first.Name {
		t.Errorf("another owner, same key: job %s created %v err %v, want a new job", bobs.Name, created, err)
	}
	if got := first.Labels[kubehtcv1alpha1.SiteQueueLabel]; got != "atlas-prod" {
		t.Errorf("site queue label %q, want atlas-prod", got)
	}
}

func TestSubmitRefuses(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	alice := caller(s, "atlas", "alice")
	tests := []struct {
		name string
		sub  Submission
		want error
	}{
		{name: "bad client key", sub: Submission{ClientKey: "a b", Description: translate.Description{Queue: "atlas-prod", Executable: "x"}}, want: ErrInvalid},
		{name: "another VO's queue", sub: Submission{ClientKey: "k", Description: translate.Description{Queue: "cms-prod", Executable: "x"}}, want: ErrForbidden},
		{name: "no queue", sub: Submission{ClientKey: "k", Description: translate.Description{Executable: "x"}}, want: ErrInvalid},
		{name: "credential mount without a credential", sub: Submission{ClientKey: "k",
			Description: translate.Description{Queue: "atlas-prod", Executable: "x", RuntimeEnvironments: []string{"ENV/PROXY"}}}, want: ErrInvalid},
		{name: "proxy that is not PEM", sub: Submission{ClientKey: "k", Description: translate.Description{Queue: "atlas-prod", Executable: "x"},
			Credential: &Credential{Type: kubehtcv1alpha1.CredentialX509Proxy, Data: []byte("junk")}}, want: ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := s.Submit(ctx, alice, tc.sub); !errors.Is(err, tc.want) {
				t.Errorf("Submit: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestGetChecksTheOwner: a job is found only by its owner; another owner and another VO are forbidden.
func TestGetChecksTheOwner(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	alice, bob, carol := caller(s, "atlas", "alice"), caller(s, "atlas", "bob"), caller(s, "cms", "carol")
	gj, _, err := s.Submit(ctx, alice, Submission{ClientKey: "k1", Description: translate.Description{Queue: "atlas-prod", Executable: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		who  *auth.Identity
		id   string
		want error
	}{
		{name: "owner", who: alice, id: ID(gj)},
		{name: "another owner of the VO", who: bob, id: ID(gj), want: ErrForbidden},
		{name: "another VO", who: carol, id: ID(gj), want: ErrForbidden},
		{name: "missing", who: alice, id: "atlas." + NamePrefix + "0", want: ErrNotFound},
		{name: "malformed", who: alice, id: "atlas-job", want: ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Get(ctx, tc.who, tc.id)
			if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("Get: %v, want %v", err, tc.want)
			}
		})
	}
	if list, err := s.List(ctx, bob); err != nil || len(list) != 0 {
		t.Errorf("bob's list: %d jobs, %v; want none", len(list), err)
	}
}
