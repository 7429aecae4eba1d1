package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/gridgateway/config"
)

// refreshInterval bounds how often an issuer's JWKS URL is fetched again for an unknown key id.
const refreshInterval = time.Minute

// keyStore holds the issuers' public keys.
type keyStore struct {
	mu      sync.Mutex
	sets    map[string]*jose.JSONWebKeySet
	urls    map[string]string
	fetched map[string]time.Time
	http    *http.Client
}

func staticKeys(keys map[string]*jose.JSONWebKeySet) *keyStore {
	return &keyStore{sets: keys, urls: map[string]string{}, fetched: map[string]time.Time{}}
}

func loadKeys(ctx context.Context, issuers []config.Issuer) (*keyStore, error) {
	ks := staticKeys(map[string]*jose.JSONWebKeySet{})
	ks.http = &http.Client{Timeout: 10 * time.Second}
	for _, is := range issuers {
		if is.JWKSFile != "" {
			b, err := os.ReadFile(is.JWKSFile)
			if err != nil {
				return nil, fmt.Errorf("issuer %s: %w", is.URL, err)
			}
			set, err := parseJWKS(b)
			if err != nil {
				return nil, fmt.Errorf("issuer %s: %s: %w", is.URL, is.JWKSFile, err)
			}
			ks.sets[is.URL] = set
			continue
		}
		ks.urls[is.URL] = is.JWKSURL
		if err := ks.fetch(ctx, is.URL); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

func parseJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("parsing JWKS: %w", err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("JWKS key %q is not a public key", k.KeyID)
		}
	}
	return &set, nil
}

// fetch downloads the issuer's key set; the caller must not hold mu.
func (ks *keyStore) fetch(ctx context.Context, issuer string) error {
	url := ks.urls[issuer]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := ks.http.Do(req)
	if err != nil {
		return fmt.Errorf("issuer %s: fetching %s: %w", issuer, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("issuer %s: fetching %s: %s", issuer, url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	set, err := parseJWKS(b)
	if err != nil {
		return fmt.Errorf("issuer %s: %w", issuer, err)
	}
	ks.mu.Lock()
	ks.sets[issuer], ks.fetched[issuer] = set, time.Now()
	ks.mu.Unlock()
	return nil
}

// forIssuer returns the keys of a trusted issuer that may have signed a token with key id kid (every key
// when kid is empty). An unknown kid makes it fetch the issuer's JWKS URL again (key rotation).
func (ks *keyStore) forIssuer(ctx context.Context, issuer, kid string) ([]jose.JSONWebKey, bool) {
	ks.mu.Lock()
	set, ok := ks.sets[issuer]
	_, refreshable := ks.urls[issuer]
	last := ks.fetched[issuer]
	ks.mu.Unlock()
	if !ok {
		return nil, false
	}
	if kid == "" {
		return set.Keys, true
	}
	if keys := set.Key(kid); len(keys) > 0 || !refreshable || time.Since(last) < refreshInterval {
		return keys, true
	}
	if err := ks.fetch(ctx, issuer); err != nil {
		klog.FromContext(ctx).Error(err, "Refreshing issuer keys", "issuer", issuer)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.sets[issuer].Key(kid), true
}
