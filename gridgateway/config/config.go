// Package config is the grid gateway's site configuration: queue profiles, the rules that map an
// authenticated identity (token claims or certificate DN and VOMS FQANs) to a VO, token issuers and
// audiences, and runtime environments (named fragments of volumes and environment).
package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Site is the whole site configuration, read from YAML by Load.
type Site struct {
	// Audiences are the token audiences the gateway accepts (its URL); a token must name one of them.
	Audiences []string `json:"audiences"`
	// AllowAnyAudience also accepts the WLCG "any" audience https://wlcg.cern.ch/jwt/v1/any.
	AllowAnyAudience bool `json:"allowAnyAudience,omitempty"`
	// Issuers are the token issuers the gateway trusts, each with its keys.
	Issuers []Issuer `json:"issuers"`
	// VOs are the virtual organisations served, with their mapping rules.
	VOs []VO `json:"vos"`
	// Queues are the queue profiles.
	Queues []Queue `json:"queues"`
	// RuntimeEnvironments are the runtime environments a description may name.
	RuntimeEnvironments []RuntimeEnvironment `json:"runtimeEnvironments,omitempty"`
	// Limits bound every description, whatever the queue.
	Limits Limits `json:"limits,omitempty"`
}

// Issuer is a trusted token issuer.
type Issuer struct {
	// URL is the iss claim.
	URL string `json:"url"`
	// JWKSFile is a JSON Web Key Set file with the issuer's public keys.
	JWKSFile string `json:"jwksFile,omitempty"`
	// JWKSURL is where to fetch the key set (e.g. the jwks_uri of the issuer's discovery document).
	JWKSURL string `json:"jwksURL,omitempty"`
}

// VO is a virtual organisation: the namespace its GridJobs live in and who belongs to it.
type VO struct {
	// Name of the VO, e.g. atlas.
	Name string `json:"name"`
	// Namespace holds the VO's GridJobs and Pods.
	Namespace string `json:"namespace"`
	// Tokens are rules over token claims; a token matching any of them belongs to the VO.
	Tokens []TokenRule `json:"tokens,omitempty"`
	// Certificates are rules over client certificates; a certificate matching any belongs to the VO.
	Certificates []CertificateRule `json:"certificates,omitempty"`
}

// TokenRule matches token claims. Empty fields match anything.
type TokenRule struct {
	// Issuer must equal the iss claim.
	Issuer string `json:"issuer"`
	// Subject is a regular expression the sub claim must match entirely.
	Subject string `json:"subject,omitempty"`
	// Group must be one of the wlcg.groups claim's values.
	Group string `json:"group,omitempty"`

	subject *regexp.Regexp
}

// CertificateRule matches a client certificate. Empty fields match anything.
type CertificateRule struct {
	// DN is a regular expression the subject DN (RFC 2253 or OpenSSL slash form, as the gateway renders it)
	// must match entirely.
	DN string `json:"dn,omitempty"`
	// FQAN must be one of the VOMS FQANs the client presented.
	FQAN string `json:"fqan,omitempty"`

	dn *regexp.Regexp
}

// Queue is a queue profile: which VOs may use it and how its jobs run.
type Queue struct {
	// Name of the queue (the ARC QueueName / GLUE2 ComputingShare).
	Name string `json:"name"`
	// VOs allowed to submit to the queue.
	VOs []string `json:"vos"`
	// Image is the default container image of the queue's jobs.
	Image string `json:"image"`
	// PriorityClassName of the queue's Pods.
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// NodeSelector of the queue's Pods.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// PodLabels are extra labels of the queue's Pods (at most 16; kubehtc.io/ keys are reserved).
	PodLabels map[string]string `json:"podLabels,omitempty"`
	// DefaultWallTimeSeconds applies when a description gives none; 0 means the queue's maximum.
	DefaultWallTimeSeconds int64 `json:"defaultWallTimeSeconds,omitempty"`
	// DefaultMemoryMiBPerCore applies when a description gives no memory; 0 means 2000.
	DefaultMemoryMiBPerCore int64 `json:"defaultMemoryMiBPerCore,omitempty"`
	// Limits of one job in this queue; zero fields fall back to the site limits.
	Limits Limits `json:"limits,omitempty"`
}

// Limits bound one job's resources. Zero means the built-in default (see DefaultLimits).
type Limits struct {
	MaxCores           int32 `json:"maxCores,omitempty"`
	MaxMemoryMiB       int64 `json:"maxMemoryMiB,omitempty"`
	MaxWallTimeSeconds int64 `json:"maxWallTimeSeconds,omitempty"`
	MaxDiskMiB         int64 `json:"maxDiskMiB,omitempty"`
	MaxGPUs            int32 `json:"maxGPUs,omitempty"`
}

// DefaultLimits apply where neither the queue nor the site sets a limit: a large worker node.
var DefaultLimits = Limits{MaxCores: 128, MaxMemoryMiB: 1 << 20, MaxWallTimeSeconds: 7 * 24 * 3600, MaxDiskMiB: 1 << 20, MaxGPUs: 8}

// RuntimeEnvironment is a named fragment of a job: CVMFS repositories, environment variables, the
// credential mount.
type RuntimeEnvironment struct {
	// Name as descriptions give it, e.g. APPS/HEP/ATLAS-SITE or ENV/PROXY.
	Name string `json:"name"`
	// CVMFS repositories to mount read-only.
	CVMFS []string `json:"cvmfs,omitempty"`
	// Env variables to set (the description's own variables win).
	Env map[string]string `json:"env,omitempty"`
	// MountCredential mounts the delegated credential and sets X509_USER_PROXY or BEARER_TOKEN_FILE.
	MountCredential bool `json:"mountCredential,omitempty"`
}

// Load reads and validates a site configuration file.
func Load(path string) (*Site, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse decodes and validates a YAML site configuration.
func Parse(b []byte) (*Site, error) {
	var s Site
	if err := yaml.UnmarshalStrict(b, &s); err != nil {
		return nil, fmt.Errorf("site configuration: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("site configuration: %w", err)
	}
	return &s, nil
}

// Validate checks the configuration and compiles its patterns. Parse calls it; a Site built in code must
// call it before use.
func (s *Site) Validate() error {
	var errs []error
	if len(s.Audiences) == 0 && !s.AllowAnyAudience {
		errs = append(errs, errors.New("audiences: at least one audience (the gateway URL) is required"))
	}
	issuers := map[string]bool{}
	for i, is := range s.Issuers {
		if is.URL == "" {
			errs = append(errs, fmt.Errorf("issuers[%d]: url is required", i))
		}
		if (is.JWKSFile == "") == (is.JWKSURL == "") {
			errs = append(errs, fmt.Errorf("issuers[%d] %s: exactly one of jwksFile and jwksURL is required", i, is.URL))
		}
		issuers[is.URL] = true
	}
	vos := map[string]bool{}
	for i := range s.VOs {
		vo := &s.VOs[i]
		if msgs := validation.IsDNS1123Label(vo.Name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("vos[%d] name %q: %v", i, vo.Name, msgs))
		}
		if vos[vo.Name] {
			errs = append(errs, fmt.Errorf("vos[%d]: duplicate VO %q", i, vo.Name))
		}
		vos[vo.Name] = true
		if msgs := validation.IsDNS1123Label(vo.Namespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("vo %s namespace %q: %v", vo.Name, vo.Namespace, msgs))
		}
		for j := range vo.Tokens {
			r := &vo.Tokens[j]
			if !issuers[r.Issuer] {
				errs = append(errs, fmt.Errorf("vo %s tokens[%d]: issuer %q is not among the issuers", vo.Name, j, r.Issuer))
			}
			var err error
			if r.subject, err = anchored(r.Subject); err != nil {
				errs = append(errs, fmt.Errorf("vo %s tokens[%d] subject: %w", vo.Name, j, err))
			}
		}
		for j := range vo.Certificates {
			r := &vo.Certificates[j]
			var err error
			if r.dn, err = anchored(r.DN); err != nil {
				errs = append(errs, fmt.Errorf("vo %s certificates[%d] dn: %w", vo.Name, j, err))
			}
		}
	}
	queues := map[string]bool{}
	for i, q := range s.Queues {
		if msgs := validation.IsDNS1123Label(q.Name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("queues[%d] name %q: %v", i, q.Name, msgs))
		}
		if queues[q.Name] {
			errs = append(errs, fmt.Errorf("queues[%d]: duplicate queue %q", i, q.Name))
		}
		queues[q.Name] = true
		if len(q.PodLabels) > 16 {
			errs = append(errs, fmt.Errorf("queue %s: %d podLabels, at most 16", q.Name, len(q.PodLabels)))
		}
		for k, v := range q.PodLabels {
			if msgs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(msgs) > 0 || strings.HasPrefix(k, "kubehtc.io/") {
				errs = append(errs, fmt.Errorf("queue %s: pod label %s=%s: invalid or reserved (%v)", q.Name, k, v, msgs))
			}
		}
		if q.Image == "" {
			errs = append(errs, fmt.Errorf("queue %s: image is required", q.Name))
		}
		if len(q.VOs) == 0 {
			errs = append(errs, fmt.Errorf("queue %s: vos is empty, no one could use it", q.Name))
		}
		for _, v := range q.VOs {
			if !vos[v] {
				errs = append(errs, fmt.Errorf("queue %s: unknown VO %q", q.Name, v))
			}
		}
	}
	errs = append(errs, s.validateQueueBounds()...)
	rtes := map[string]bool{}
	for i, r := range s.RuntimeEnvironments {
		if r.Name == "" || rtes[r.Name] {
			errs = append(errs, fmt.Errorf("runtimeEnvironments[%d]: empty or duplicate name %q", i, r.Name))
		}
		rtes[r.Name] = true
		for _, repo := range r.CVMFS {
			if msgs := validation.IsDNS1123Subdomain(repo); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("runtime environment %s: CVMFS repository %q: %v", r.Name, repo, msgs))
			}
		}
	}
	return errors.Join(errs...)
}

func anchored(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	return regexp.Compile("^(?:" + expr + ")$")
}

// Queue returns the queue profile with the given name.
func (s *Site) Queue(name string) (*Queue, bool) {
	for i := range s.Queues {
		if s.Queues[i].Name == name {
			return &s.Queues[i], true
		}
	}
	return nil, false
}

// VO returns the VO with the given name.
func (s *Site) VO(name string) (*VO, bool) {
	for i := range s.VOs {
		if s.VOs[i].Name == name {
			return &s.VOs[i], true
		}
	}
	return nil, false
}

// RuntimeEnvironment returns the runtime environment with the given name.
func (s *Site) RuntimeEnvironment(name string) (*RuntimeEnvironment, bool) {
	for i := range s.RuntimeEnvironments {
		if s.RuntimeEnvironments[i].Name == name {
			return &s.RuntimeEnvironments[i], true
		}
	}
	return nil, false
}

// Allows reports whether the VO may submit to the queue.
func (q *Queue) Allows(vo string) bool { return slices.Contains(q.VOs, vo) }

// EffectiveLimits are the queue's limits, falling back to the site's and then to DefaultLimits.
func (s *Site) EffectiveLimits(q *Queue) Limits {
	pick32 := func(vs ...int32) int32 {
		for _, v := range vs {
			if v > 0 {
				return v
			}
		}
		return 0
	}
	pick64 := func(vs ...int64) int64 {
		for _, v := range vs {
			if v > 0 {
				return v
			}
		}
		return 0
	}
	return Limits{
		MaxCores:           pick32(q.Limits.MaxCores, s.Limits.MaxCores, DefaultLimits.MaxCores),
		MaxMemoryMiB:       pick64(q.Limits.MaxMemoryMiB, s.Limits.MaxMemoryMiB, DefaultLimits.MaxMemoryMiB),
		MaxWallTimeSeconds: pick64(q.Limits.MaxWallTimeSeconds, s.Limits.MaxWallTimeSeconds, DefaultLimits.MaxWallTimeSeconds),
		MaxDiskMiB:         pick64(q.Limits.MaxDiskMiB, s.Limits.MaxDiskMiB, DefaultLimits.MaxDiskMiB),
		MaxGPUs:            pick32(q.Limits.MaxGPUs, s.Limits.MaxGPUs, DefaultLimits.MaxGPUs),
	}
}
