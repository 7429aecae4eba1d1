package snapshotter

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Defaults of Config, applied by SetDefaults.
const (
	// DefaultAddress is the unix socket the snapshots API is served on.
	DefaultAddress = "/run/kubehtc-snapshotter/snapshotter.sock"
	// DefaultRoot holds snapshots, FUSE mount points and the content cache.
	DefaultRoot = "/var/lib/kubehtc-snapshotter"
	// DefaultPrefetchTimeoutSeconds bounds how long a mount waits for a layer's prioritized files.
	DefaultPrefetchTimeoutSeconds = 10
	// DefaultCacheMemoryEntries is the number of chunks kept in memory.
	DefaultCacheMemoryEntries = 10
	// DefaultCacheOpenFiles is the number of cache files kept open.
	DefaultCacheOpenFiles = 10
	// DefaultChunkSizeBytes is the granularity of on-demand and background fetches.
	DefaultChunkSizeBytes = 50000
	// DefaultRequestTimeoutSeconds is the timeout of one request to a registry.
	DefaultRequestTimeoutSeconds = 30
)

// Config is the configuration of kubehtc-snapshotter, read from a TOML file (docs/snapshotter.md documents every
// key). The zero value of a field means "default" where a default exists; SetDefaults fills them in.
type Config struct {
	// Address is the path of the unix socket that serves containerd's snapshots gRPC API. containerd's proxy
	// plugin points at it.
	Address string `toml:"address" json:"address,omitempty"`
	// Root is the directory of snapshots, FUSE mount points and the fetched-content cache. It must be on a
	// filesystem that supports overlayfs upper directories (ext4, xfs).
	Root string `toml:"root" json:"root,omitempty"`
	// MetricsAddress is the host:port that serves Prometheus metrics on /metrics; empty disables them.
	MetricsAddress string `toml:"metrics_address,omitempty" json:"metricsAddress,omitempty"`
	// BackgroundFetch makes the snapshotter fetch whole layers in the background once they are mounted, so that
	// later reads are local. Off keeps registry traffic to what containers read. A nil value means on.
	BackgroundFetch *bool `toml:"background_fetch,omitempty" json:"backgroundFetch,omitempty"`
	// Prefetch configures the fetch of a layer's prioritized files (those listed first at conversion) at mount.
	Prefetch PrefetchConfig `toml:"prefetch" json:"prefetch,omitempty"`
	// Cache bounds the memory and file descriptors the content cache uses.
	Cache CacheConfig `toml:"cache" json:"cache,omitempty"`
	// RequestTimeoutSeconds is the timeout of one request to a registry unless a mirror sets its own.
	RequestTimeoutSeconds int `toml:"request_timeout_seconds,omitempty" json:"requestTimeoutSeconds,omitempty"`
	// LogFileAccess logs the first access to each file of a lazily mounted layer: the raw material of a
	// prioritized-file list.
	LogFileAccess bool `toml:"log_file_access,omitempty" json:"logFileAccess,omitempty"`
	// Registries lists registry hosts that need settings: plain HTTP, or mirrors to try first.
	Registries []RegistryConfig `toml:"registry,omitempty" json:"registries,omitempty"`
	// ContainerdRestartCommand, if set, runs once after the socket is served. containerd reconnects to a
	// restarted proxy snapshotter only after a back-off (reported up to two minutes; a few seconds measured with
	// containerd 1.6.20), and loads a new proxy plugin only at its start; restarting it settles both at once. On a node:
	// ["nsenter", "--target", "1", "--mount", "--", "systemctl", "restart", "containerd"].
	ContainerdRestartCommand []string `toml:"containerd_restart_command,omitempty" json:"containerdRestartCommand,omitempty"`
}

// PrefetchConfig configures the prefetch of prioritized files.
type PrefetchConfig struct {
	// Disabled turns prefetch off: prioritized files are fetched when read, like any other.
	Disabled bool `toml:"disabled,omitempty" json:"disabled,omitempty"`
	// TimeoutSeconds bounds how long a mount waits for the prefetch.
	TimeoutSeconds int64 `toml:"timeout_seconds,omitempty" json:"timeoutSeconds,omitempty"`
}

// CacheConfig bounds the content cache.
type CacheConfig struct {
	// MemoryEntries is the number of fetched chunks kept in memory (LRU).
	MemoryEntries int `toml:"memory_entries,omitempty" json:"memoryEntries,omitempty"`
	// OpenFiles is the number of cache files kept open (LRU).
	OpenFiles int `toml:"open_files,omitempty" json:"openFiles,omitempty"`
	// ChunkSizeBytes is the granularity of fetches from the registry.
	ChunkSizeBytes int64 `toml:"chunk_size_bytes,omitempty" json:"chunkSizeBytes,omitempty"`
}

// RegistryConfig holds the settings of one registry host.
type RegistryConfig struct {
	// Host is the registry as it appears in image references: "registry.example.org" or "10.0.0.5:5000".
	Host string `toml:"host" json:"host"`
	// Insecure makes the snapshotter use plain HTTP for Host. Loopback hosts (localhost, 127.0.0.1) always use
	// plain HTTP.
	Insecure bool `toml:"insecure,omitempty" json:"insecure,omitempty"`
	// Mirrors are tried in order before Host.
	Mirrors []MirrorConfig `toml:"mirror,omitempty" json:"mirrors,omitempty"`
}

// MirrorConfig is a mirror of a registry.
type MirrorConfig struct {
	// Host is the mirror's host[:port].
	Host string `toml:"host" json:"host"`
	// Insecure makes the snapshotter use plain HTTP for this mirror.
	Insecure bool `toml:"insecure,omitempty" json:"insecure,omitempty"`
	// RequestTimeoutSeconds overrides Config.RequestTimeoutSeconds for this mirror; negative means none.
	RequestTimeoutSeconds int `toml:"request_timeout_seconds,omitempty" json:"requestTimeoutSeconds,omitempty"`
}

// SetDefaults fills in the fields left at their zero value.
func (c *Config) SetDefaults() {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if c.BackgroundFetch == nil {
		on := true
		c.BackgroundFetch = &on
	}
	if c.Prefetch.TimeoutSeconds == 0 {
		c.Prefetch.TimeoutSeconds = DefaultPrefetchTimeoutSeconds
	}
	if c.Cache.MemoryEntries == 0 {
		c.Cache.MemoryEntries = DefaultCacheMemoryEntries
	}
	if c.Cache.OpenFiles == 0 {
		c.Cache.OpenFiles = DefaultCacheOpenFiles
	}
	if c.Cache.ChunkSizeBytes == 0 {
		c.Cache.ChunkSizeBytes = DefaultChunkSizeBytes
	}
	if c.RequestTimeoutSeconds == 0 {
		c.RequestTimeoutSeconds = DefaultRequestTimeoutSeconds
	}
}

// Validate reports every invalid field of a defaulted Config.
func (c *Config) Validate() error {
	var errs []error
	if !filepath.IsAbs(c.Address) {
		errs = append(errs, fmt.Errorf("address %q: must be an absolute socket path", c.Address))
	}
	if !filepath.IsAbs(c.Root) {
		errs = append(errs, fmt.Errorf("root %q: must be an absolute path", c.Root))
	}
	if c.MetricsAddress != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddress); err != nil {
			errs = append(errs, fmt.Errorf("metrics_address %q: %w", c.MetricsAddress, err))
		}
	}
	if c.Prefetch.TimeoutSeconds < 0 {
		errs = append(errs, fmt.Errorf("prefetch.timeout_seconds %d: must not be negative", c.Prefetch.TimeoutSeconds))
	}
	if c.Cache.MemoryEntries < 0 || c.Cache.OpenFiles < 0 || c.Cache.ChunkSizeBytes < 0 {
		errs = append(errs, errors.New("cache: limits must not be negative"))
	}
	seen := map[string]bool{}
	for i, r := range c.Registries {
		if err := validHost(r.Host); err != nil {
			errs = append(errs, fmt.Errorf("registry[%d].host: %w", i, err))
		}
		if seen[r.Host] {
			errs = append(errs, fmt.Errorf("registry[%d].host %q: listed twice", i, r.Host))
		}
		seen[r.Host] = true
		for j, m := range r.Mirrors {
			if err := validHost(m.Host); err != nil {
				errs = append(errs, fmt.Errorf("registry[%d].mirror[%d].host: %w", i, j, err))
			}
		}
	}
	if len(c.ContainerdRestartCommand) > 0 && c.ContainerdRestartCommand[0] == "" {
		errs = append(errs, errors.New("containerd_restart_command: the program must not be empty"))
	}
	return errors.Join(errs...)
}

// validHost accepts host or host:port, without scheme or path.
func validHost(h string) error {
	switch {
	case h == "":
		return errors.New("must not be empty")
	case strings.Contains(h, "://"):
		return fmt.Errorf("%q: give host[:port] without a scheme (set insecure for plain HTTP)", h)
	case strings.ContainsAny(h, "/ \t"):
		return fmt.Errorf("%q: not a host[:port]", h)
	}
	return nil
}

// ParseConfig decodes a TOML configuration, rejecting unknown keys, then applies defaults and validates it.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var sme *toml.StrictMissingError
		if errors.As(err, &sme) {
			return nil, fmt.Errorf("decoding snapshotter config: %s", strings.TrimSpace(sme.String()))
		}
		return nil, fmt.Errorf("decoding snapshotter config: %w", err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid snapshotter config: %w", err)
	}
	return &c, nil
}

// LoadConfig reads and parses the TOML configuration file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading snapshotter config: %w", err)
	}
	return ParseConfig(data)
}
