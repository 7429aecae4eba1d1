package translate

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/csi/inject"
	"github.com/kubehtc/kubehtc/gridgateway/config"
)

// Description is a job description as a pilot factory sends it (the common denominator of ARC ADL/xRSL and
// HTCondor-CE ClassAds; see ../shared/reference/arc-rest.md §3.1).
type Description struct {
	// Name is the client's job name.
	Name string
	// Queue names the site queue; empty is refused.
	Queue string
	// Cores is the number of cores; 0 means 1.
	Cores int32
	// MemoryMiB is the memory of the whole job; 0 means the queue's default per core times Cores.
	MemoryMiB int64
	// WallTimeSeconds bounds the run time; 0 means the queue's default.
	WallTimeSeconds int64
	// DiskMiB is scratch space; 0 means none requested.
	DiskMiB int64
	// GPUs is the number of GPUs.
	GPUs int32
	// Image is the container image; empty means the queue's image.
	Image string
	// Executable and Arguments form the container command; an empty Executable runs the image's entrypoint
	// with Arguments.
	Executable string
	Arguments  []string
	// Environment are environment variables.
	Environment map[string]string
	// RuntimeEnvironments name site runtime environments (e.g. APPS/HEP/ATLAS-SITE, ENV/PROXY).
	RuntimeEnvironments []string
	// Inputs are files the client uploads before the job may start.
	Inputs []string
	// Outputs are files the job leaves for the client.
	Outputs []string
}

// Bounds on the parts of a description; the GridJob CRD enforces the same ones.
const (
	MaxNameLength     = 256
	MaxArgs           = 256
	MaxArgLength      = 4096
	MaxEnv            = 128
	MaxEnvValueLength = 4096
	MaxRTEs           = 32
	MaxFiles          = 64
	MaxImageLength    = 512
	// MaxDescriptionBytes bounds the sum of every string of a description.
	MaxDescriptionBytes = 128 << 10
	// DefaultMemoryMiBPerCore is the memory per core when neither the description nor the queue says.
	DefaultMemoryMiBPerCore = 2000
)

var (
	// ErrInvalid is wrapped by every error about the description itself (gRPC InvalidArgument).
	ErrInvalid = errors.New("invalid job description")
	// ErrForbidden is wrapped when the description is well-formed but the VO may not have it, e.g. a queue
	// of another VO (gRPC PermissionDenied).
	ErrForbidden = errors.New("not allowed")

	envName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	fileName = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Translate validates d for a member of vo and returns the GridJob description: resources with the queue's
// defaults, the queue's image, priority class and node selector, and the effects of the runtime
// environments (CVMFS repositories, environment, credential mount). Errors wrap ErrInvalid or ErrForbidden
// and name the offending field.
func Translate(site *config.Site, vo string, d Description) (kubehtcv1alpha1.GridJobDescription, error) {
	var out kubehtcv1alpha1.GridJobDescription
	if err := checkSizes(d); err != nil {
		return out, err
	}
	if d.Queue == "" {
		return out, invalid("queue is required")
	}
	q, ok := site.Queue(d.Queue)
	if !ok {
		return out, invalid("unknown queue %q", d.Queue)
	}
	if !q.Allows(vo) {
		return out, fmt.Errorf("%w: VO %q may not submit to queue %q", ErrForbidden, vo, d.Queue)
	}
	lim := site.EffectiveLimits(q)

	cores := d.Cores
	if cores == 0 {
		cores = 1
	}
	if cores < 0 || cores > lim.MaxCores {
		return out, invalid("cores %d: must be between 1 and %d in queue %s", d.Cores, lim.MaxCores, q.Name)
	}
	mem := d.MemoryMiB
	if mem == 0 {
		perCore := q.DefaultMemoryMiBPerCore
		if perCore == 0 {
			perCore = DefaultMemoryMiBPerCore
		}
		mem = perCore * int64(cores)
	}
	if mem < 0 || mem > lim.MaxMemoryMiB {
		return out, invalid("memoryMiB %d: must be between 1 and %d in queue %s", d.MemoryMiB, lim.MaxMemoryMiB, q.Name)
	}
	wall := d.WallTimeSeconds
	if wall == 0 {
		wall = q.DefaultWallTimeSeconds
		if wall == 0 {
			wall = lim.MaxWallTimeSeconds
		}
	}
	if wall < 0 || wall > lim.MaxWallTimeSeconds {
		return out, invalid("wallTimeSeconds %d: must be between 1 and %d in queue %s", d.WallTimeSeconds, lim.MaxWallTimeSeconds, q.Name)
	}
	if d.DiskMiB < 0 || d.DiskMiB > lim.MaxDiskMiB {
		return out, invalid("diskMiB %d: must be between 0 and %d in queue %s", d.DiskMiB, lim.MaxDiskMiB, q.Name)
	}
	if d.GPUs < 0 || d.GPUs > lim.MaxGPUs {
		return out, invalid("gpus %d: must be between 0 and %d in queue %s", d.GPUs, lim.MaxGPUs, q.Name)
	}
	image := d.Image
	if image == "" {
		image = q.Image
	}
	if strings.ContainsAny(image, " \t\n") {
		return out, invalid("image %q: contains white space", image)
	}

	out = kubehtcv1alpha1.GridJobDescription{
		Name:              d.Name,
		Cores:             cores,
		MemoryMiB:         mem,
		WallTimeSeconds:   wall,
		DiskMiB:           d.DiskMiB,
		GPUs:              d.GPUs,
		Image:             image,
		Args:              slices.Clone(d.Arguments),
		PriorityClassName: q.PriorityClassName,
		NodeSelector:      maps.Clone(q.NodeSelector),
		PodLabels:         maps.Clone(q.PodLabels),
	}
	if d.Executable != "" {
		out.Command = []string{d.Executable}
	}

	env := map[string]string{}
	var repos []string
	for _, name := range d.RuntimeEnvironments {
		rte, ok := site.RuntimeEnvironment(name)
		if !ok {
			return kubehtcv1alpha1.GridJobDescription{}, invalid("unknown runtime environment %q", name)
		}
		if slices.Contains(out.RuntimeEnvironments, name) {
			continue
		}
		out.RuntimeEnvironments = append(out.RuntimeEnvironments, name)
		repos = append(repos, rte.CVMFS...)
		maps.Copy(env, rte.Env)
		out.MountCredential = out.MountCredential || rte.MountCredential
	}
	for k, v := range d.Environment {
		if !envName.MatchString(k) {
			return kubehtcv1alpha1.GridJobDescription{}, invalid("environment variable name %q: must match %s", k, envName)
		}
		env[k] = v
	}
	if len(env) > MaxEnv {
		return kubehtcv1alpha1.GridJobDescription{}, invalid("%d environment variables with those of the runtime environments: at most %d", len(env), MaxEnv)
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out.Env = append(out.Env, kubehtcv1alpha1.EnvVar{Name: k, Value: env[k]})
	}
	slices.Sort(repos)
	for _, r := range slices.Compact(repos) {
		if err := inject.ValidateRepository(r); err != nil {
			return kubehtcv1alpha1.GridJobDescription{}, invalid("CVMFS repository %q: %v", r, err)
		}
		out.CVMFS = append(out.CVMFS, kubehtcv1alpha1.CVMFSMount{Repository: r})
	}
	for _, files := range []struct {
		what string
		in   []string
		out  *[]string
	}{{"input", d.Inputs, &out.Inputs}, {"output", d.Outputs, &out.Outputs}} {
		for _, f := range files.in {
			if !fileName.MatchString(f) || f == "." || f == ".." || len(validation.IsConfigMapKey(f)) > 0 {
				return kubehtcv1alpha1.GridJobDescription{}, invalid("%s file name %q: must be a plain file name of letters, digits, '-', '_' and '.'", files.what, f)
			}
			if slices.Contains(*files.out, f) {
				return kubehtcv1alpha1.GridJobDescription{}, invalid("%s file %q is listed twice", files.what, f)
			}
			*files.out = append(*files.out, f)
		}
	}
	return out, nil
}

// checkSizes refuses oversized descriptions before anything else looks at them.
func checkSizes(d Description) error {
	total := len(d.Name) + len(d.Queue) + len(d.Image) + len(d.Executable)
	switch {
	case len(d.Name) > MaxNameLength:
		return invalid("name: %d bytes, at most %d", len(d.Name), MaxNameLength)
	case len(d.Image) > MaxImageLength:
		return invalid("image: %d bytes, at most %d", len(d.Image), MaxImageLength)
	case len(d.Executable) > MaxArgLength:
		return invalid("executable: %d bytes, at most %d", len(d.Executable), MaxArgLength)
	case len(d.Arguments) > MaxArgs:
		return invalid("%d arguments, at most %d", len(d.Arguments), MaxArgs)
	case len(d.Environment) > MaxEnv:
		return invalid("%d environment variables, at most %d", len(d.Environment), MaxEnv)
	case len(d.RuntimeEnvironments) > MaxRTEs:
		return invalid("%d runtime environments, at most %d", len(d.RuntimeEnvironments), MaxRTEs)
	case len(d.Inputs) > MaxFiles || len(d.Outputs) > MaxFiles:
		return invalid("%d inputs and %d outputs, at most %d each", len(d.Inputs), len(d.Outputs), MaxFiles)
	}
	for i, a := range d.Arguments {
		if len(a) > MaxArgLength {
			return invalid("arguments[%d]: %d bytes, at most %d", i, len(a), MaxArgLength)
		}
		total += len(a)
	}
	for k, v := range d.Environment {
		if len(k) > 256 || len(v) > MaxEnvValueLength {
			return invalid("environment variable %.40q: name or value too long (at most 256 and %d bytes)", k, MaxEnvValueLength)
		}
		total += len(k) + len(v)
	}
	for _, l := range [][]string{d.RuntimeEnvironments, d.Inputs, d.Outputs} {
		for _, s := range l {
			if len(s) > 253 {
				return invalid("%.40q…: names are at most 253 bytes", s)
			}
			total += len(s)
		}
	}
	if total > MaxDescriptionBytes {
		return invalid("description is %d bytes, at most %d", total, MaxDescriptionBytes)
	}
	return nil
}
