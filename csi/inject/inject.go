package inject

import (
	"errors"
	"fmt"
	"hash/fnv"
	"path"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

const (
	// CVMFSAnnotation lists CVMFS repositories, separated by commas: "atlas.cern.ch,sft.cern.ch".
	CVMFSAnnotation = kubehtcv1alpha1.CVMFSAnnotation
	// EOSAnnotation lists EOS paths, separated by commas: "/eos/atlas,/eos/user/j/jdoe".
	EOSAnnotation = kubehtcv1alpha1.EOSAnnotation

	// DefaultCVMFSDriver is CERN's cvmfs-csi driver, the one most sites already run. kubehtc's own driver
	// accepts the same volume attributes, so Options.CVMFSDriver may name either.
	DefaultCVMFSDriver = "cvmfs.csi.cern.ch"
	// DefaultEOSDriver is kubehtc's CSI driver (cmd/kubehtc-csi).
	DefaultEOSDriver = "csi.kubehtc.io"

	// CVMFSMountRoot is where repositories appear in containers, as on every grid worker node.
	CVMFSMountRoot = "/cvmfs"
	// EOSMountRoot is the prefix every EOS path must have.
	EOSMountRoot = "/eos"

	// AttrType, AttrRepository and AttrPath are the CSI volume attributes this package sets. kubehtc's
	// driver reads the same keys; CERN's cvmfs-csi reads "repository".
	AttrType       = "type"
	AttrRepository = "repository"
	AttrPath       = "path"
	// TypeCVMFS and TypeEOS are the values of AttrType.
	TypeCVMFS = "cvmfs"
	TypeEOS   = "eos"

	// VolumePrefix starts the name of every volume this package adds.
	VolumePrefix = "kubehtc-"

	// MaxRepositoryLength bounds a repository name (a DNS name).
	MaxRepositoryLength = 253
	// MaxPathLength bounds an EOS path.
	MaxPathLength = 1024
	// MaxEntries bounds the number of repositories or paths in one request.
	MaxEntries = 64
)

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid mount request")

// Request lists what a pod needs mounted.
type Request struct {
	// CVMFS are repositories, e.g. atlas.cern.ch.
	CVMFS []string
	// EOS are paths, e.g. /eos/atlas.
	EOS []string
}

// Empty reports whether the request asks for nothing.
func (r Request) Empty() bool { return len(r.CVMFS) == 0 && len(r.EOS) == 0 }

// Options choose the CSI driver and volume style. The zero value is usable: see the field defaults.
type Options struct {
	// CVMFSDriver is the CSI driver for CVMFS volumes; empty means DefaultCVMFSDriver.
	CVMFSDriver string
	// EOSDriver is the CSI driver for EOS volumes; empty means DefaultEOSDriver.
	EOSDriver string
	// OmitTypeAttribute leaves out the "type" attribute of EOS volumes, for drivers that reject attributes
	// they do not know (kubehtc's driver infers the type from "path"). CVMFS volumes never carry it.
	OmitTypeAttribute bool
	// SkipInitContainers mounts only into regular containers.
	SkipInitContainers bool
}

func (o Options) withDefaults() Options {
	if o.CVMFSDriver == "" {
		o.CVMFSDriver = DefaultCVMFSDriver
	}
	if o.EOSDriver == "" {
		o.EOSDriver = DefaultEOSDriver
	}
	return o
}

// FromAnnotations parses the kubehtc.io/cvmfs and kubehtc.io/eos pod annotations into a Request. Entries
// are separated by commas, surrounding spaces are ignored, duplicates are dropped, and every entry is
// validated (ValidateRepository, ValidateEOSPath). Missing annotations give an empty Request.
func FromAnnotations(ann map[string]string) (Request, error) {
	var req Request
	var errs []error
	if v, ok := ann[CVMFSAnnotation]; ok {
		list, err := parseList(CVMFSAnnotation, v, ValidateRepository)
		req.CVMFS = list
		errs = append(errs, err)
	}
	if v, ok := ann[EOSAnnotation]; ok {
		list, err := parseList(EOSAnnotation, v, ValidateEOSPath)
		req.EOS = list
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Request{}, err
	}
	return req, nil
}

func parseList(key, value string, validate func(string) error) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if err := validate(item); err != nil {
			return nil, fmt.Errorf("annotation %s: %w", key, err)
		}
		if !seen[item] {
			seen[item] = true
			out = append(out, item)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: annotation %s: no entries in %q", ErrInvalid, key, value)
	}
	if len(out) > MaxEntries {
		return nil, fmt.Errorf("%w: annotation %s: %d entries, at most %d", ErrInvalid, key, len(out), MaxEntries)
	}
	return out, nil
}

// ValidateRepository checks a CVMFS repository name: a lower-case DNS name (letters, digits, '-', '_' and
// dots between labels), which also rules out '/', ".." and every other way out of /cvmfs.
func ValidateRepository(repo string) error {
	if repo == "" {
		return fmt.Errorf("%w: empty CVMFS repository name", ErrInvalid)
	}
	if len(repo) > MaxRepositoryLength {
		return fmt.Errorf("%w: CVMFS repository name longer than %d characters", ErrInvalid, MaxRepositoryLength)
	}
	for _, label := range strings.Split(repo, ".") {
		if label == "" {
			return fmt.Errorf("%w: CVMFS repository %q: empty label (leading, trailing or double dot)", ErrInvalid, repo)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
			if alnum || ((c == '-' || c == '_') && i > 0 && i < len(label)-1) {
				continue
			}
			return fmt.Errorf("%w: CVMFS repository %q: want a lower-case DNS name such as atlas.cern.ch", ErrInvalid, repo)
		}
	}
	return nil
}

// ValidateEOSPath checks an EOS path: absolute, under /eos, at least one component below it, already clean
// (no "..", ".", "//" or trailing slash), and made of letters, digits, '-', '_', '.' and '+'.
func ValidateEOSPath(p string) error {
	if len(p) > MaxPathLength {
		return fmt.Errorf("%w: EOS path longer than %d characters", ErrInvalid, MaxPathLength)
	}
	if !strings.HasPrefix(p, EOSMountRoot+"/") {
		return fmt.Errorf("%w: EOS path %q: must start with %s/", ErrInvalid, p, EOSMountRoot)
	}
	if path.Clean(p) != p {
		return fmt.Errorf("%w: EOS path %q: not clean (\"..\", \".\", \"//\" or a trailing slash)", ErrInvalid, p)
	}
	for _, comp := range strings.Split(p[len(EOSMountRoot)+1:], "/") {
		if comp == "." || comp == ".." {
			return fmt.Errorf("%w: EOS path %q: %q not allowed", ErrInvalid, p, comp)
		}
		for _, c := range comp {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.+", c)) {
				return fmt.Errorf("%w: EOS path %q: character %q not allowed", ErrInvalid, p, c)
			}
		}
	}
	return nil
}

// mount is one volume to add and where it goes.
type mount struct {
	volume    corev1.Volume
	mountPath string
}

// AddMounts adds a read-only CSI inline volume for every repository and path of req to spec, and mounts
// it (read-only, mountPropagation HostToContainer) at /cvmfs/<repository> or at the EOS path in every
// container (and init container unless opts.SkipInitContainers). It is idempotent: volumes and mounts that
// are already there are left alone. It returns an error wrapping ErrInvalid, without changing spec, if an
// entry is invalid or a container already mounts something else at one of the paths.
func AddMounts(spec *corev1.PodSpec, req Request, opts Options) error {
	if spec == nil {
		return fmt.Errorf("%w: nil pod spec", ErrInvalid)
	}
	mounts, err := plan(req, opts.withDefaults())
	if err != nil {
		return err
	}
	if err := checkConflicts(spec, mounts, opts); err != nil {
		return err
	}
	for _, m := range mounts {
		if volumeIndex(spec.Volumes, m.volume.Name) < 0 {
			spec.Volumes = append(spec.Volumes, m.volume)
		}
		for i := range spec.Containers {
			addMount(&spec.Containers[i], m)
		}
		if !opts.SkipInitContainers {
			for i := range spec.InitContainers {
				addMount(&spec.InitContainers[i], m)
			}
		}
	}
	return nil
}

func plan(req Request, opts Options) ([]mount, error) {
	var out []mount
	cvmfs, eos := sortedUnique(req.CVMFS), sortedUnique(req.EOS)
	if len(cvmfs) > MaxEntries || len(eos) > MaxEntries {
		return nil, fmt.Errorf("%w: at most %d CVMFS repositories and %d EOS paths", ErrInvalid, MaxEntries, MaxEntries)
	}
	for _, repo := range cvmfs {
		if err := ValidateRepository(repo); err != nil {
			return nil, err
		}
		// Only "repository": CERN's cvmfs-csi and kubehtc's driver both read it (kubehtc's infers the type).
		attrs := map[string]string{AttrRepository: repo}
		out = append(out, mount{volume: csiVolume(VolumeName(TypeCVMFS, repo), opts.CVMFSDriver, attrs), mountPath: CVMFSMountRoot + "/" + repo})
	}
	for _, p := range eos {
		if err := ValidateEOSPath(p); err != nil {
			return nil, err
		}
		attrs := map[string]string{AttrPath: p}
		if !opts.OmitTypeAttribute {
			attrs[AttrType] = TypeEOS
		}
		out = append(out, mount{volume: csiVolume(VolumeName(TypeEOS, p), opts.EOSDriver, attrs), mountPath: p})
	}
	return out, nil
}

func csiVolume(name, driver string, attrs map[string]string) corev1.Volume {
	readOnly := true
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
		Driver: driver, ReadOnly: &readOnly, VolumeAttributes: attrs,
	}}}
}

// VolumeName is the pod volume name AddMounts uses for a repository or path: a DNS label made of
// "kubehtc-", the type, a readable part of the entry and a hash of it (so that atlas.cern.ch and
// atlas-cern.ch get different names).
func VolumeName(typ, entry string) string {
	h := fnv.New32a()
	h.Write([]byte(typ + ":" + entry))
	suffix := fmt.Sprintf("-%08x", h.Sum32())
	var b strings.Builder
	for _, c := range strings.ToLower(entry) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			if s := b.String(); len(s) > 0 && s[len(s)-1] != '-' {
				b.WriteByte('-')
			}
		}
	}
	readable := strings.Trim(b.String(), "-")
	prefix := VolumePrefix + typ + "-"
	if max := 63 - len(prefix) - len(suffix); len(readable) > max {
		readable = strings.TrimRight(readable[:max], "-")
	}
	if readable == "" {
		return prefix[:len(prefix)-1] + suffix
	}
	return prefix + readable + suffix
}

// checkConflicts refuses a volume name that exists with another source and a mount path that a container
// already uses for another volume.
func checkConflicts(spec *corev1.PodSpec, mounts []mount, opts Options) error {
	for _, m := range mounts {
		if i := volumeIndex(spec.Volumes, m.volume.Name); i >= 0 && !sameCSI(spec.Volumes[i], m.volume) {
			return fmt.Errorf("%w: pod already has a different volume named %q", ErrInvalid, m.volume.Name)
		}
		check := func(c *corev1.Container) error {
			for _, vm := range c.VolumeMounts {
				if path.Clean(vm.MountPath) == m.mountPath && vm.Name != m.volume.Name {
					return fmt.Errorf("%w: container %q already mounts volume %q at %s", ErrInvalid, c.Name, vm.Name, m.mountPath)
				}
			}
			return nil
		}
		for i := range spec.Containers {
			if err := check(&spec.Containers[i]); err != nil {
				return err
			}
		}
		if !opts.SkipInitContainers {
			for i := range spec.InitContainers {
				if err := check(&spec.InitContainers[i]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func sameCSI(a, b corev1.Volume) bool {
	if a.CSI == nil || b.CSI == nil || a.CSI.Driver != b.CSI.Driver || len(a.CSI.VolumeAttributes) != len(b.CSI.VolumeAttributes) {
		return false
	}
	for k, v := range b.CSI.VolumeAttributes {
		if a.CSI.VolumeAttributes[k] != v {
			return false
		}
	}
	return true
}

func volumeIndex(vols []corev1.Volume, name string) int {
	for i := range vols {
		if vols[i].Name == name {
			return i
		}
	}
	return -1
}

func addMount(c *corev1.Container, m mount) {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == m.volume.Name && path.Clean(c.VolumeMounts[i].MountPath) == m.mountPath {
			return
		}
	}
	prop := corev1.MountPropagationHostToContainer
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{
		Name: m.volume.Name, MountPath: m.mountPath, ReadOnly: true, MountPropagation: &prop,
	})
}

func sortedUnique(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	n := 0
	for i, s := range out {
		if i == 0 || s != out[n-1] {
			out[n] = s
			n++
		}
	}
	return out[:n]
}
