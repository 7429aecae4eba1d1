package snapshotter

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"sigs.k8s.io/yaml"
)

// DefaultPluginName is the name containerd knows the snapshotter by (`--snapshotter`, CRI's snapshotter).
const DefaultPluginName = "stargz"

// bareKey matches the names containerd's config can use without quoting.
var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Site is the site configuration of lazy pulling, written once by the operator (YAML): every node file is
// rendered from it.
type Site struct {
	// PluginName is the proxy plugin's name in containerd. Default "stargz".
	PluginName string `json:"pluginName,omitempty"`
	// DisableCRI leaves containerd's CRI plugin alone (a standalone containerd without a kubelet). By default
	// the CRI plugin pulls through the snapshotter, which is what Kubernetes nodes need.
	DisableCRI bool `json:"disableCRI,omitempty"`
	// Snapshotter is kubehtc-snapshotter's configuration.
	Snapshotter Config `json:"snapshotter"`
}

// ParseSite decodes a YAML site configuration (unknown fields are errors), applies defaults and validates it.
func ParseSite(data []byte) (*Site, error) {
	var s Site
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("decoding site config: %w", err)
	}
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("invalid site config: %w", err)
	}
	return &s, nil
}

// SetDefaults fills in the fields left at their zero value.
func (s *Site) SetDefaults() {
	if s.PluginName == "" {
		s.PluginName = DefaultPluginName
	}
	s.Snapshotter.SetDefaults()
}

// Validate reports every invalid field of a defaulted Site.
func (s *Site) Validate() error {
	if !bareKey.MatchString(s.PluginName) {
		return fmt.Errorf("pluginName %q: only letters, digits, '-' and '_' (a bare TOML key)", s.PluginName)
	}
	if err := s.Snapshotter.Validate(); err != nil {
		return fmt.Errorf("snapshotter: %w", err)
	}
	return nil
}

// ContainerdVersion selects the containerd config schema to render.
type ContainerdVersion int

const (
	// Containerd1 is containerd 1.6 and 1.7 (config version 2, CRI plugin io.containerd.grpc.v1.cri).
	Containerd1 ContainerdVersion = 1
	// Containerd2 is containerd 2.x (config version 3, CRI image plugin io.containerd.cri.v1.images).
	Containerd2 ContainerdVersion = 2
)

// ParseContainerdVersion accepts a containerd release ("1.6", "1.7.27", "2", "2.1") and returns the config
// schema it reads.
func ParseContainerdVersion(v string) (ContainerdVersion, error) {
	major, minor, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	switch major {
	case "1":
		if n, err := strconv.Atoi(minor); err == nil && n >= 6 {
			return Containerd1, nil
		}
	case "2":
		return Containerd2, nil
	}
	return 0, fmt.Errorf("containerd version %q: supported are 1.6, 1.7 and 2.x", v)
}

// RenderContainerd renders the containerd config fragment that registers the snapshotter as a proxy plugin and,
// unless the site disables it, makes it CRI's snapshotter with remote-snapshot annotations on. Put the fragment
// in a file containerd imports (`imports = ["/etc/containerd/conf.d/*.toml"]`) or merge it into config.toml.
func RenderContainerd(s *Site, v ContainerdVersion) (string, error) {
	var b strings.Builder
	name := s.PluginName
	sn := s.Snapshotter
	fmt.Fprintf(&b, "# containerd %s: lazy pulling through kubehtc-snapshotter (rendered by `kubehtc snapshotter config`).\n", v)
	switch v {
	case Containerd1:
		b.WriteString("version = 2\n")
	case Containerd2:
		b.WriteString("version = 3\n")
	default:
		return "", fmt.Errorf("unknown containerd version %d", v)
	}
	fmt.Fprintf(&b, "\n[proxy_plugins.%s]\n", name)
	b.WriteString("  type = \"snapshot\"\n")
	fmt.Fprintf(&b, "  address = %s\n", quote(sn.Address))
	fmt.Fprintf(&b, "  [proxy_plugins.%s.exports]\n", name)
	fmt.Fprintf(&b, "    root = %s\n", quote(strings.TrimSuffix(sn.Root, "/")+"/"))
	// containerd 2.x passes remote-snapshot labels to a proxy snapshotter only when it exports this; 1.x ignores
	// it and needs the CRI setting below.
	b.WriteString("    enable_remote_snapshot_annotations = \"true\"\n")
	if s.DisableCRI {
		return b.String(), nil
	}
	switch v {
	case Containerd1:
		b.WriteString("\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n")
	case Containerd2:
		b.WriteString("\n[plugins.\"io.containerd.cri.v1.images\"]\n")
	}
	fmt.Fprintf(&b, "  snapshotter = %s\n", quote(name))
	b.WriteString("  disable_snapshot_annotations = false\n")
	return b.String(), nil
}

// String names the releases a version covers.
func (v ContainerdVersion) String() string {
	switch v {
	case Containerd1:
		return "1.6/1.7"
	case Containerd2:
		return "2.x"
	}
	return fmt.Sprintf("ContainerdVersion(%d)", int(v))
}

// RenderSnapshotterConfig renders kubehtc-snapshotter's TOML configuration file.
func RenderSnapshotterConfig(c *Config) (string, error) {
	out, err := toml.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encoding snapshotter config: %w", err)
	}
	return "# kubehtc-snapshotter configuration (rendered by `kubehtc snapshotter config`; keys: docs/snapshotter.md).\n" +
		string(out), nil
}

// quote returns s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Paths where the node files go.
const (
	// ContainerdFragmentPath is where the containerd fragment goes; containerd 2.x imports conf.d by default,
	// 1.6/1.7 need `imports = ["/etc/containerd/conf.d/*.toml"]` in config.toml.
	ContainerdFragmentPath = "/etc/containerd/conf.d/kubehtc-snapshotter.toml"
	// SnapshotterConfigPath is kubehtc-snapshotter's default -config.
	SnapshotterConfigPath = "/etc/kubehtc-snapshotter/config.toml"
)

// NodeFile is a rendered node file and where it goes.
type NodeFile struct {
	// Path is the file's place on the node.
	Path string
	// Content is the file's content.
	Content string
}

// NodeFiles renders both node files of a site for a containerd version: the containerd fragment, then the
// snapshotter's configuration.
func NodeFiles(s *Site, v ContainerdVersion) ([]NodeFile, error) {
	frag, err := RenderContainerd(s, v)
	if err != nil {
		return nil, err
	}
	cfg, err := RenderSnapshotterConfig(&s.Snapshotter)
	if err != nil {
		return nil, err
	}
	return []NodeFile{{Path: ContainerdFragmentPath, Content: frag}, {Path: SnapshotterConfigPath, Content: cfg}}, nil
}
