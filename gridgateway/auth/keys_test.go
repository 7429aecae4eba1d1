package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kubehtc/kubehtc/gridgateway/config"
)

// TestJWKSFromURL serves an issuer's key set over HTTP: tokens verify with the fetched keys, and a token
// signed with a new key (rotation) verifies once the set is fetched again, which happens for an unknown
// key id at most once per refreshInterval.
func TestJWKSFromURL(t *testing.T) {
	old, rotated := newIssuerKey(t, atlasIssuer, "old"), newIssuerKey(t, atlasIssuer, "new")
	var mu sync.Mutex
	keys := []jose.JSONWebKey{old.public}
	fetches := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
	}))
	defer srv.Close()
	site, err := config.Parse([]byte(`
audiences: [https://gateway.example.org]
issuers: [{url: "https://atlas-auth.example.org/", jwksURL: "` + srv.URL + `"}]
vos: [{name: atlas, namespace: atlas, tokens: [{issuer: "https://atlas-auth.example.org/"}]}]
queues: []
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := New(ctx, site)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifyToken(ctx, old.token(t, "f", nil)); err != nil {
		t.Fatalf("token of the served key: %v", err)
	}
	mu.Lock()
	keys = append(keys, rotated.public)
	mu.Unlock()
	// Within refreshInterval of the last fetch the unknown key is not fetched: Unauthenticated.
	if _, err := a.VerifyToken(ctx, rotated.token(t, "f", nil)); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("token of a key not yet fetched: %v, want Unauthenticated", err)
	}
	a.keys.mu.Lock()
	a.keys.fetched[atlasIssuer] = time.Now().Add(-2 * refreshInterval)
	a.keys.mu.Unlock()
	if _, err := a.VerifyToken(ctx, rotated.token(t, "f", nil)); err != nil {
		t.Fatalf("token of a rotated key after the refresh interval: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fetches != 2 {
		t.Errorf("%d fetches of the key set, want 2 (start, rotation)", fetches)
	}
}
