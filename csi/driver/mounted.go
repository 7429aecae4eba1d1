package driver

import (
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kubehtc/kubehtc/csi/mounter"
)

// Identify lists the CVMFS repositories and EOS paths that the mount table shows below cfg.KubeletDir.
// It only reads the table (and, for Helper mounts, one extended attribute per mount): it never looks up
// a path under the host roots, which would make autofs mount every allowed repository.
func Identify(table mounter.Table, cfg Config, cvmfs mounter.Mounter) (cvmfsRepos, eosPaths []string, err error) {
	kubelet := cfg.KubeletDir
	if resolved, err := filepath.EvalSymlinks(kubelet); err == nil {
		kubelet = resolved
	}
	// Origins of the repositories the node shows: the allowlisted names and whatever is mounted directly
	// below the CVMFS host root (wildcard-allowed repositories).
	repoOrigins := map[mounter.Origin]string{}
	addRepo := func(repo string) {
		if o, ok := table.OriginOf(path.Join(cfg.CVMFS.HostRoot, repo)); ok && cfg.AllowsRepository(repo) {
			repoOrigins[o] = repo
		}
	}
	for _, r := range cfg.CVMFS.Repositories {
		if !strings.HasPrefix(r, "*.") {
			addRepo(r)
		}
	}
	for _, e := range table.Under(cfg.CVMFS.HostRoot) {
		if path.Dir(e.MountPoint) == cfg.CVMFS.HostRoot {
			addRepo(path.Base(e.MountPoint))
		}
	}
	type eosOrigin struct {
		origin mounter.Origin
		prefix string
	}
	var eosOrigins []eosOrigin
	for _, p := range cfg.EOS.Paths {
		if o, ok := table.OriginOf(path.Join(cfg.EOS.HostRoot, strings.TrimPrefix(p, "/eos"))); ok {
			eosOrigins = append(eosOrigins, eosOrigin{o, p})
		}
	}
	identifier, _ := cvmfs.(interface {
		Identify(mounter.Entry) (string, bool)
	})

	repos, paths := map[string]bool{}, map[string]bool{}
	for _, e := range table.Under(kubelet) {
		if repo, ok := repoOrigins[e.Origin()]; ok {
			repos[repo] = true
			continue
		}
		if identifier != nil {
			if repo, ok := identifier.Identify(e); ok && cfg.AllowsRepository(repo) {
				repos[repo] = true
				continue
			}
		}
		for _, eo := range eosOrigins {
			base := strings.TrimSuffix(eo.origin.Root, "/")
			if e.Device == eo.origin.Device && (e.Root == eo.origin.Root || strings.HasPrefix(e.Root, base+"/")) {
				paths[eo.prefix+strings.TrimPrefix(e.Root, base)] = true
				break
			}
		}
	}
	return slices.Sorted(maps.Keys(repos)), slices.Sorted(maps.Keys(paths)), nil
}
