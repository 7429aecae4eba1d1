package driver

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kubehtc/kubehtc/csi/inject"
)

// Defaults of Config.
const (
	DefaultDriverName = inject.DefaultEOSDriver
	DefaultKubeletDir = "/var/lib/kubelet"
	DefaultCVMFSRoot  = "/cvmfs"
	DefaultEOSRoot    = "/eos"
	// MounterBind and MounterHelper select the mounter implementation.
	MounterBind   = "bind"
	MounterHelper = "helper"
)

// Config is the driver's configuration file (YAML).
type Config struct {
	// DriverName is the CSI driver name; default DefaultDriverName.
	DriverName string `json:"driverName,omitempty"`
	// KubeletDir is the kubelet's root directory; targets must lie below it. Default /var/lib/kubelet.
	KubeletDir string `json:"kubeletDir,omitempty"`
	// CVMFS configures CVMFS volumes.
	CVMFS CVMFSConfig `json:"cvmfs"`
	// EOS configures EOS volumes.
	EOS EOSConfig `json:"eos"`
}

// CVMFSConfig configures CVMFS volumes.
type CVMFSConfig struct {
	// HostRoot is the node directory where the CVMFS client shows repositories; default /cvmfs.
	HostRoot string `json:"hostRoot,omitempty"`
	// Mounter is "bind" (default) or "helper".
	Mounter string `json:"mounter,omitempty"`
	// Repositories are the allowed repositories; an entry "*.cern.ch" allows every repository under
	// cern.ch. Empty allows none.
	Repositories []string `json:"repositories"`
	// ClientConfigs are named client configurations that volumes may select with clientConfig.
	ClientConfigs map[string]ClientConfig `json:"clientConfigs,omitempty"`
}

// ClientConfig is an alternative CVMFS client setup.
type ClientConfig struct {
	// HostRoot replaces CVMFSConfig.HostRoot for the bind mounter (a second autofs map).
	HostRoot string `json:"hostRoot,omitempty"`
	// ConfigFile is passed to the mount helper as config=FILE.
	ConfigFile string `json:"configFile,omitempty"`
}

// EOSConfig configures EOS volumes.
type EOSConfig struct {
	// HostRoot is the node directory that stands for /eos; default /eos.
	HostRoot string `json:"hostRoot,omitempty"`
	// Mounter is "bind" (default: bind-mount HostRoot/<path>, e.g. eosxd under the node's autofs) or "helper"
	// (mount each volume with eosxd, mount -t fuse -o fsname=<instance> eosxd; whole instances /eos/<instance>
	// only, configured in the node's /etc/eos/fuse.<instance>.conf).
	Mounter string `json:"mounter,omitempty"`
	// Paths are the allowed path prefixes, e.g. /eos/atlas allows /eos/atlas and everything below.
	Paths []string `json:"paths"`
}

// LoadConfig reads a YAML configuration file, sets defaults and validates it.
func LoadConfig(file string) (Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return Config{}, fmt.Errorf("parsing %s: %w", file, err)
	}
	c.Default()
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// Default fills in defaults.
func (c *Config) Default() {
	if c.DriverName == "" {
		c.DriverName = DefaultDriverName
	}
	if c.KubeletDir == "" {
		c.KubeletDir = DefaultKubeletDir
	}
	if c.CVMFS.HostRoot == "" {
		c.CVMFS.HostRoot = DefaultCVMFSRoot
	}
	if c.CVMFS.Mounter == "" {
		c.CVMFS.Mounter = MounterBind
	}
	if c.EOS.HostRoot == "" {
		c.EOS.HostRoot = DefaultEOSRoot
	}
	if c.EOS.Mounter == "" {
		c.EOS.Mounter = MounterBind
	}
}

// Validate checks a defaulted configuration.
func (c *Config) Validate() error {
	for name, dir := range map[string]string{"kubeletDir": c.KubeletDir, "cvmfs.hostRoot": c.CVMFS.HostRoot, "eos.hostRoot": c.EOS.HostRoot} {
		if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
			return fmt.Errorf("%s %q: want a clean absolute path", name, dir)
		}
	}
	if c.CVMFS.Mounter != MounterBind && c.CVMFS.Mounter != MounterHelper {
		return fmt.Errorf("cvmfs.mounter %q: want %q or %q", c.CVMFS.Mounter, MounterBind, MounterHelper)
	}
	if c.EOS.Mounter != MounterBind && c.EOS.Mounter != MounterHelper {
		return fmt.Errorf("eos.mounter %q: want %q or %q", c.EOS.Mounter, MounterBind, MounterHelper)
	}
	for _, r := range c.CVMFS.Repositories {
		if err := inject.ValidateRepository(strings.TrimPrefix(r, "*.")); err != nil {
			return fmt.Errorf("cvmfs.repositories: %w", err)
		}
	}
	for name, cc := range c.CVMFS.ClientConfigs {
		if !validConfigName(name) {
			return fmt.Errorf("cvmfs.clientConfigs: bad name %q", name)
		}
		if cc.HostRoot != "" && (!filepath.IsAbs(cc.HostRoot) || filepath.Clean(cc.HostRoot) != cc.HostRoot) {
			return fmt.Errorf("cvmfs.clientConfigs.%s.hostRoot %q: want a clean absolute path", name, cc.HostRoot)
		}
	}
	for _, p := range c.EOS.Paths {
		if err := inject.ValidateEOSPath(p); err != nil {
			return fmt.Errorf("eos.paths: %w", err)
		}
	}
	return nil
}

// AllowsRepository reports whether the allowlist has repo.
func (c *Config) AllowsRepository(repo string) bool {
	for _, r := range c.CVMFS.Repositories {
		if r == repo || (strings.HasPrefix(r, "*.") && strings.HasSuffix(repo, r[1:])) {
			return true
		}
	}
	return false
}

// AllowsEOSPath reports whether p is an allowed prefix or below one.
func (c *Config) AllowsEOSPath(p string) bool {
	for _, a := range c.EOS.Paths {
		if p == a || strings.HasPrefix(p, a+"/") {
			return true
		}
	}
	return false
}

func (c *Config) allowlist(typ string) string {
	list := c.CVMFS.Repositories
	if typ == inject.TypeEOS {
		list = c.EOS.Paths
	}
	list = append([]string(nil), list...)
	sort.Strings(list)
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}
