package driver

import (
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"github.com/kubehtc/kubehtc/csi/inject"
	"github.com/kubehtc/kubehtc/csi/mounter"
)

// AttrClientConfig selects a named client configuration (Config.CVMFS.ClientConfigs).
const AttrClientConfig = "clientConfig"

// reservedPrefix marks attributes the CO adds (pod information on mount, the ephemeral flag); they are
// accepted and ignored.
const reservedPrefix = "csi.storage.k8s.io/"

// Errors of attribute parsing and resolution.
var (
	// ErrBadAttributes: the attributes are malformed (wrong keys, invalid names, traversal).
	ErrBadAttributes = errors.New("invalid volume attributes")
	// ErrNotAllowed: the repository, path or client configuration is not in the driver's configuration.
	ErrNotAllowed = errors.New("not allowed by the driver configuration")
)

// Attributes are the parsed volume attributes.
type Attributes struct {
	// Type is inject.TypeCVMFS or inject.TypeEOS.
	Type string
	// Name is the repository or the EOS path.
	Name string
	// ClientConfig is a client configuration name, or empty.
	ClientConfig string
}

// ParseAttributes parses and validates volume attributes (see the package doc). Unknown keys are refused
// so that a typo ("repo") gives an error instead of a surprise; keys under csi.storage.k8s.io/ are ignored.
func ParseAttributes(attrs map[string]string) (Attributes, error) {
	var a Attributes
	repo, hasRepo := attrs[inject.AttrRepository]
	p, hasPath := attrs[inject.AttrPath]
	var unknown []string
	for k := range attrs {
		switch k {
		case inject.AttrType, inject.AttrRepository, inject.AttrPath, AttrClientConfig:
		default:
			if !strings.HasPrefix(k, reservedPrefix) {
				unknown = append(unknown, k)
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return a, fmt.Errorf("%w: unknown keys %q (want type, repository, path, clientConfig)", ErrBadAttributes, unknown)
	}
	a.Type = attrs[inject.AttrType]
	switch {
	case hasRepo && hasPath:
		return a, fmt.Errorf("%w: both repository and path given", ErrBadAttributes)
	case a.Type == "" && hasRepo:
		a.Type = inject.TypeCVMFS
	case a.Type == "" && hasPath:
		a.Type = inject.TypeEOS
	}
	switch a.Type {
	case inject.TypeCVMFS:
		if !hasRepo {
			return a, fmt.Errorf("%w: type cvmfs needs repository", ErrBadAttributes)
		}
		if err := inject.ValidateRepository(repo); err != nil {
			return a, fmt.Errorf("%w: %w", ErrBadAttributes, err)
		}
		a.Name = repo
	case inject.TypeEOS:
		if !hasPath {
			return a, fmt.Errorf("%w: type eos needs path", ErrBadAttributes)
		}
		if err := inject.ValidateEOSPath(p); err != nil {
			return a, fmt.Errorf("%w: %w", ErrBadAttributes, err)
		}
		a.Name = p
	case "":
		return a, fmt.Errorf("%w: no repository or path", ErrBadAttributes)
	default:
		return a, fmt.Errorf("%w: type %q (want cvmfs or eos)", ErrBadAttributes, a.Type)
	}
	if cc, ok := attrs[AttrClientConfig]; ok {
		if a.Type != inject.TypeCVMFS || !validConfigName(cc) {
			return a, fmt.Errorf("%w: clientConfig %q: want a name of letters, digits, '-', '_' or '.', for cvmfs volumes only", ErrBadAttributes, cc)
		}
		a.ClientConfig = cc
	}
	return a, nil
}

// Map returns the attributes as a volume context.
func (a Attributes) Map() map[string]string {
	m := map[string]string{inject.AttrType: a.Type}
	if a.Type == inject.TypeCVMFS {
		m[inject.AttrRepository] = a.Name
	} else {
		m[inject.AttrPath] = a.Name
	}
	if a.ClientConfig != "" {
		m[AttrClientConfig] = a.ClientConfig
	}
	return m
}

// Resolve checks a against the allowlist and returns what the mounter needs.
func (c *Config) Resolve(a Attributes) (mounter.Volume, error) {
	switch a.Type {
	case inject.TypeCVMFS:
		if !c.AllowsRepository(a.Name) {
			return mounter.Volume{}, fmt.Errorf("%w: CVMFS repository %q (allowed: %s)", ErrNotAllowed, a.Name, c.allowlist(a.Type))
		}
		v := mounter.Volume{Type: mounter.TypeCVMFS, Name: a.Name, HostRoot: c.CVMFS.HostRoot}
		if a.ClientConfig != "" {
			cc, ok := c.CVMFS.ClientConfigs[a.ClientConfig]
			if !ok {
				return mounter.Volume{}, fmt.Errorf("%w: CVMFS client configuration %q", ErrNotAllowed, a.ClientConfig)
			}
			if cc.HostRoot != "" {
				v.HostRoot = cc.HostRoot
			}
			v.ConfigFile = cc.ConfigFile
		}
		return v, nil
	case inject.TypeEOS:
		if !c.AllowsEOSPath(a.Name) {
			return mounter.Volume{}, fmt.Errorf("%w: EOS path %q (allowed prefixes: %s)", ErrNotAllowed, a.Name, c.allowlist(a.Type))
		}
		return mounter.Volume{Type: mounter.TypeEOS, Name: a.Name, HostRoot: c.EOS.HostRoot}, nil
	}
	return mounter.Volume{}, fmt.Errorf("%w: type %q", ErrBadAttributes, a.Type)
}

// VolumeID encodes a volume created by CreateVolume: "<type>:<name>:<hash of the request name>[:<client
// config>]". The ID carries everything NodePublishVolume needs, so the controller keeps no state, and the
// same request name always gives the same ID.
func VolumeID(requestName string, a Attributes) string {
	h := fnv.New64a()
	h.Write([]byte(requestName))
	id := fmt.Sprintf("%s:%s:%016x", a.Type, a.Name, h.Sum64())
	if a.ClientConfig != "" {
		id += ":" + a.ClientConfig
	}
	return id
}

// ParseVolumeID decodes a VolumeID.
func ParseVolumeID(id string) (Attributes, error) {
	parts := strings.Split(id, ":")
	if len(parts) != 3 && len(parts) != 4 {
		return Attributes{}, fmt.Errorf("%w: volume ID %q is not <type>:<name>:<hash>[:<clientConfig>]", ErrBadAttributes, id)
	}
	if len(parts[2]) != 16 || strings.Trim(parts[2], "0123456789abcdef") != "" {
		return Attributes{}, fmt.Errorf("%w: volume ID %q has no valid hash", ErrBadAttributes, id)
	}
	attrs := map[string]string{inject.AttrType: parts[0]}
	if parts[0] == inject.TypeEOS {
		attrs[inject.AttrPath] = parts[1]
	} else {
		attrs[inject.AttrRepository] = parts[1]
	}
	if len(parts) == 4 {
		attrs[AttrClientConfig] = parts[3]
	}
	return ParseAttributes(attrs)
}

func validConfigName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return s != "." && s != ".."
}
