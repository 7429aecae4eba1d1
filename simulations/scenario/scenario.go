// Package scenario is the file format of `kubehtc sim`: the cluster, the queues and their shares, the
// workload sources, how long to run and which scheduler profiles to compare. Files are decoded strictly
// (unknown fields are errors) and validated with errors that name the field (workloads[2].generate.cpu).
package scenario

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/kubehtc/kubehtc/internal/localcluster"
)

// Scenario is one simulation: a cluster, a workload and the profiles to compare on it.
//
//	name: nasa-ipsc
//	cluster:
//	  pools:
//	  - {name: ipsc, count: 8, cpu: "16", memory: 64Gi}
//	workloads:
//	- swf: {path: ../../../shared/traces/pwa-nasa-ipsc-1993/NASA-iPSC-1993-3.1-cln.swf.gz}
type Scenario struct {
	// Name identifies the scenario in reports; a DNS-1123 label.
	Name string `json:"name"`
	// Description is shown at the top of the report.
	Description string `json:"description,omitempty"`
	// Cluster is the simulated cluster.
	Cluster Cluster `json:"cluster"`
	// Queues are the fair-share queues (VOs) and their shares. A job's queue is also its namespace.
	Queues []Queue `json:"queues,omitempty"`
	// Policy is the site's fair-share policy (the root Queue's spec.policy), in simulated time; it needs
	// queues. Omitted fields take the Queue CRD's defaults: half-life 24h, accounting every 1m.
	Policy *Policy `json:"policy,omitempty"`
	// Profiles are the scheduler profiles (schedulerNames of the kubehtc scheduler configuration) to run the
	// workload on, once each on identical input. Default: default-scheduler and kubehtc.
	Profiles []string `json:"profiles,omitempty"`
	// Duration is the simulated time to run; empty means until every batch job has finished ("until drained").
	// Services run until the end; a scenario with services needs a duration.
	Duration *metav1.Duration `json:"duration,omitempty"`
	// Compression is how many simulated seconds pass per wall second in cluster mode (runtimes are divided by
	// it). Default 60.
	Compression float64 `json:"compression,omitempty"`
	// Seed makes generators and tie-breaking reproducible. Default 1.
	Seed uint64 `json:"seed,omitempty"`
	// Workloads are the job sources; their jobs are merged in arrival order.
	Workloads []Workload `json:"workloads"`

	// dir is the scenario file's folder: relative paths are resolved against it.
	dir string
}

// Cluster is the simulated cluster: node pools as in the local cluster, or the node list of the Alibaba trace.
type Cluster struct {
	// Pools are node groups, as in `kubehtc up --nodes-config`.
	Pools []localcluster.NodePool `json:"pools,omitempty"`
	// AlibabaNodes is an openb node list (openb_node_list_*.csv); its nodes are added to Pools.
	AlibabaNodes string `json:"alibabaNodes,omitempty"`
}

// Queue is a leaf fair-share queue (a VO) and the namespace of its jobs.
type Queue struct {
	// Name of the queue and of its namespace; a DNS-1123 label.
	Name string `json:"name"`
	// Share is the queue's weight; targets are shares normalised over all queues.
	Share float64 `json:"share"`
}

// Policy is the part of the root Queue's fair-share policy a scenario may set.
type Policy struct {
	// HalfLife of past usage: how long a queue's heavy use keeps lowering its rank. At least 1s.
	HalfLife *metav1.Duration `json:"halfLife,omitempty"`
	// AccountingInterval is how often the quota controller decays usage and writes ranks. At least 1s.
	AccountingInterval *metav1.Duration `json:"accountingInterval,omitempty"`
}

// HalfLife is the policy's half-life, 0 for the default.
func (s *Scenario) HalfLife() time.Duration {
	if s.Policy == nil || s.Policy.HalfLife == nil {
		return 0
	}
	return s.Policy.HalfLife.Duration
}

// AccountingInterval is the policy's accounting interval, 0 for the default.
func (s *Scenario) AccountingInterval() time.Duration {
	if s.Policy == nil || s.Policy.AccountingInterval == nil {
		return 0
	}
	return s.Policy.AccountingInterval.Duration
}

// minPolicyDuration is the Queue CRD's minimum for both durations of a policy.
const minPolicyDuration = time.Second

// Workload is one source of jobs; exactly one field is set.
type Workload struct {
	// SWF replays a Parallel Workloads Archive log.
	SWF *SWF `json:"swf,omitempty"`
	// Alibaba replays the pods of an openb pod list in creation order.
	Alibaba *Alibaba `json:"alibaba,omitempty"`
	// Generate makes synthetic jobs of one class.
	Generate *Generator `json:"generate,omitempty"`
}

// SWF maps an SWF log to pods: processors → cpu, requested memory → memory, run time → runtime, and the
// user, group or queue field → kubehtc queue.
type SWF struct {
	// Path of the log, plain or gzip; relative to the scenario file.
	Path string `json:"path"`
	// MaxJobs keeps the first jobs only; 0 keeps all.
	MaxJobs int `json:"maxJobs,omitempty"`
	// CPUPerProcessor is the cpu request per SWF processor. Default "1".
	CPUPerProcessor string `json:"cpuPerProcessor,omitempty"`
	// MemoryPerProcessor is the memory request per processor when the log gives none. Default "1Gi".
	MemoryPerProcessor string `json:"memoryPerProcessor,omitempty"`
	// QueueBy names the field that picks the queue: "user" (u<id>), "group" (g<id>), "queue" (q<id>), or
	// empty: every job in queue "swf".
	QueueBy string `json:"queueBy,omitempty"`
	// Class is the kubehtc.io/class label of the pods. Default "batch".
	Class string `json:"class,omitempty"`
}

// Alibaba replays an openb pod list. Pods never finish: as in the ATC'23 paper, the cluster fills until pods no
// longer fit, and the report gives the unallocated GPU fraction when the first GPU pod fails.
type Alibaba struct {
	// Pods is the pod list (openb_pod_list_*.csv); relative to the scenario file.
	Pods string `json:"pods"`
	// MaxPods keeps the first pods (in creation order) only; 0 keeps all.
	MaxPods int `json:"maxPods,omitempty"`
	// Sample, when set, replaces the in-order replay by the ATC'23 paper's evaluation: pods drawn from the
	// list with replacement until the arrived GPU requests reach a fraction of the cluster's GPUs.
	Sample *AlibabaSample `json:"sample,omitempty"`
}

// AlibabaSample draws pods from an openb pod list as the paper's simulator (hkust-adsl/
// kubernetes-scheduler-simulator) inflates its workload: uniformly, with replacement, seeded. Pods that do not
// fit are skipped (they stay pending; nothing ever finishes), so arrivals continue past the first failure and
// the report can give the allocation ratio at every level of arrived GPU workload.
type AlibabaSample struct {
	// UntilGPUWorkload stops drawing once the arrived GPU requests (whole GPUs, see package alibaba) reach
	// this fraction of the cluster's GPUs. Default 1.05, a little past capacity as in the paper's figures.
	UntilGPUWorkload float64 `json:"untilGPUWorkload,omitempty"`
	// Seed of the draw; 0 takes the scenario's seed.
	Seed uint64 `json:"seed,omitempty"`
}

// Generator classes.
const (
	ClassPilot    = "pilot"
	ClassAnalysis = "analysis"
	ClassJob      = "job"
	ClassGang     = "gang"
	ClassService  = "service"
)

// Generator makes Count jobs (gangs, services) of one class arriving Every apart from Start.
type Generator struct {
	// Class is pilot, analysis, job, gang (Members pods in one PodGroup) or service (Replicas pods that run to
	// the end; their replica count follows a day/night curve when Diurnal is set).
	Class string `json:"class"`
	// Queue the jobs belong to; must be one of the scenario's queues when it declares any.
	Queue string `json:"queue"`
	// Count of jobs, gangs or services.
	Count int `json:"count"`
	// Start is the first arrival; default 0.
	Start metav1.Duration `json:"start,omitempty"`
	// Every is the mean time between arrivals (exponentially distributed); 0 submits all at Start.
	Every metav1.Duration `json:"every,omitempty"`
	// CPU and Memory are each pod's requests.
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
	// GPUs per pod.
	GPUs int `json:"gpus,omitempty"`
	// Runtime of each pod (not for services).
	Runtime metav1.Duration `json:"runtime,omitempty"`
	// RuntimeJitter spreads runtimes uniformly over Runtime×[1-j, 1+j]; in [0, 1).
	RuntimeJitter float64 `json:"runtimeJitter,omitempty"`
	// Walltime is the declared run-time limit of each pod (a batch system's requested walltime), at least the
	// longest runtime, Runtime×(1+RuntimeJitter). Default: that longest runtime. Not for services.
	Walltime metav1.Duration `json:"walltime,omitempty"`
	// Members is the gang size (gang only).
	Members int `json:"members,omitempty"`
	// Replicas is the number of pods of each service (service only); with Diurnal, the peak.
	Replicas int `json:"replicas,omitempty"`
	// Diurnal makes service replica counts follow a day curve: from Replicas/3 at 04:00 to Replicas at 16:00.
	Diurnal bool `json:"diurnal,omitempty"`
}

// Load reads, decodes and validates a scenario file; relative paths in it are resolved against its folder.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	s, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse decodes a scenario strictly, applies defaults and validates it; dir resolves relative paths.
func Parse(data []byte, dir string) (*Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("parsing scenario: %w", err)
	}
	s.dir = dir
	s.setDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// DefaultProfiles are compared when a scenario names none.
var DefaultProfiles = []string{"default-scheduler", "kubehtc"}

func (s *Scenario) setDefaults() {
	if len(s.Profiles) == 0 {
		s.Profiles = append([]string(nil), DefaultProfiles...)
	}
	if s.Compression == 0 {
		s.Compression = 60
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
	for _, w := range s.Workloads {
		if w.Alibaba != nil && w.Alibaba.Sample != nil {
			if w.Alibaba.Sample.UntilGPUWorkload == 0 {
				w.Alibaba.Sample.UntilGPUWorkload = 1.05
			}
			if w.Alibaba.Sample.Seed == 0 {
				w.Alibaba.Sample.Seed = s.Seed
			}
		}
		if w.SWF != nil {
			if w.SWF.CPUPerProcessor == "" {
				w.SWF.CPUPerProcessor = "1"
			}
			if w.SWF.MemoryPerProcessor == "" {
				w.SWF.MemoryPerProcessor = "1Gi"
			}
			if w.SWF.Class == "" {
				w.SWF.Class = "batch"
			}
		}
	}
}

// Resolve returns path relative to the scenario file's folder (absolute paths unchanged).
func (s *Scenario) Resolve(path string) string {
	if filepath.IsAbs(path) || s.dir == "" {
		return path
	}
	return filepath.Join(s.dir, path)
}

// DurationOrZero is the simulated duration, 0 meaning until drained.
func (s *Scenario) DurationOrZero() time.Duration {
	if s.Duration == nil {
		return 0
	}
	return s.Duration.Duration
}

// Validate reports every problem of the scenario, each naming its field.
func (s *Scenario) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if msgs := validation.IsDNS1123Label(s.Name); len(msgs) > 0 {
		add("name", "%q is not a DNS-1123 label: %s", s.Name, strings.Join(msgs, "; "))
	}
	if len(s.Cluster.Pools) == 0 && s.Cluster.AlibabaNodes == "" {
		add("cluster", "pools or alibabaNodes is required")
	}
	if len(s.Cluster.Pools) > 0 {
		if err := (localcluster.NodePoolsConfig{Pools: s.Cluster.Pools}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("cluster.%w", err))
		}
	}
	queues := map[string]bool{}
	for i, q := range s.Queues {
		f := fmt.Sprintf("queues[%d]", i)
		if msgs := validation.IsDNS1123Label(q.Name); len(msgs) > 0 {
			add(f+".name", "%q is not a DNS-1123 label: %s", q.Name, strings.Join(msgs, "; "))
		} else if queues[q.Name] {
			add(f+".name", "%q is declared twice", q.Name)
		}
		queues[q.Name] = true
		if !(q.Share > 0) {
			add(f+".share", "must be positive, got %v", q.Share)
		}
	}
	if s.Policy != nil {
		if len(s.Queues) == 0 {
			add("policy", "needs queues: the policy is the fair-share policy of the queues")
		}
		for _, f := range []struct {
			name string
			d    *metav1.Duration
		}{{"policy.halfLife", s.Policy.HalfLife}, {"policy.accountingInterval", s.Policy.AccountingInterval}} {
			if f.d != nil && f.d.Duration < minPolicyDuration {
				add(f.name, "must be at least %v (the Queue CRD's minimum), got %v", minPolicyDuration, f.d.Duration)
			}
		}
	}
	seen := map[string]bool{}
	for i, p := range s.Profiles {
		if p == "" || seen[p] {
			add(fmt.Sprintf("profiles[%d]", i), "%q is empty or repeated", p)
		}
		seen[p] = true
	}
	if s.Duration != nil && s.Duration.Duration <= 0 {
		add("duration", "must be positive, got %v (omit it to run until drained)", s.Duration.Duration)
	}
	if !(s.Compression > 0) {
		add("compression", "must be positive, got %v", s.Compression)
	}
	if len(s.Workloads) == 0 {
		add("workloads", "at least one workload is required")
	}
	for i, w := range s.Workloads {
		errs = append(errs, w.validate(fmt.Sprintf("workloads[%d]", i), queues, s.Duration != nil))
	}
	return errors.Join(errs...)
}

func (w Workload) validate(f string, queues map[string]bool, hasDuration bool) error {
	set := 0
	for _, p := range []bool{w.SWF != nil, w.Alibaba != nil, w.Generate != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%s: exactly one of swf, alibaba, generate is required, got %d", f, set)
	}
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", f, field, fmt.Sprintf(format, args...)))
	}
	switch {
	case w.SWF != nil:
		if w.SWF.Path == "" {
			add("swf.path", "required")
		}
		if w.SWF.MaxJobs < 0 {
			add("swf.maxJobs", "must not be negative, got %d", w.SWF.MaxJobs)
		}
		errs = append(errs, quantity(f+".swf.cpuPerProcessor", w.SWF.CPUPerProcessor), quantity(f+".swf.memoryPerProcessor", w.SWF.MemoryPerProcessor))
		switch w.SWF.QueueBy {
		case "", "user", "group", "queue":
		default:
			add("swf.queueBy", "%q is not one of user, group, queue (or empty)", w.SWF.QueueBy)
		}
	case w.Alibaba != nil:
		if w.Alibaba.Pods == "" {
			add("alibaba.pods", "required")
		}
		if w.Alibaba.MaxPods < 0 {
			add("alibaba.maxPods", "must not be negative, got %d", w.Alibaba.MaxPods)
		}
		if sm := w.Alibaba.Sample; sm != nil && (sm.UntilGPUWorkload <= 0 || sm.UntilGPUWorkload > 10) {
			add("alibaba.sample.untilGPUWorkload", "must be in (0, 10], got %g", sm.UntilGPUWorkload)
		}
	case w.Generate != nil:
		g := w.Generate
		switch g.Class {
		case ClassPilot, ClassAnalysis, ClassJob, ClassGang, ClassService:
		default:
			add("generate.class", "%q is not one of pilot, analysis, job, gang, service", g.Class)
		}
		if g.Queue == "" {
			add("generate.queue", "required")
		} else if len(queues) > 0 && !queues[g.Queue] {
			add("generate.queue", "%q is not one of the scenario's queues", g.Queue)
		}
		if g.Count < 1 {
			add("generate.count", "must be at least 1, got %d", g.Count)
		}
		if g.Start.Duration < 0 || g.Every.Duration < 0 {
			add("generate.start", "start and every must not be negative")
		}
		errs = append(errs, quantity(f+".generate.cpu", g.CPU), quantity(f+".generate.memory", g.Memory))
		if g.GPUs < 0 {
			add("generate.gpus", "must not be negative, got %d", g.GPUs)
		}
		if g.RuntimeJitter < 0 || g.RuntimeJitter >= 1 {
			add("generate.runtimeJitter", "must be in [0, 1), got %v", g.RuntimeJitter)
		}
		if g.Class == ClassService {
			if g.Replicas < 1 {
				add("generate.replicas", "must be at least 1 for a service, got %d", g.Replicas)
			}
			if !hasDuration {
				add("generate.class", "services run until the end: the scenario needs a duration")
			}
		} else if g.Runtime.Duration <= 0 {
			add("generate.runtime", "must be positive, got %v", g.Runtime.Duration)
		}
		if g.Walltime.Duration != 0 {
			longest := time.Duration(float64(g.Runtime.Duration) * (1 + g.RuntimeJitter))
			switch {
			case g.Class == ClassService:
				add("generate.walltime", "not for services (they run until the end)")
			case g.Walltime.Duration < longest:
				add("generate.walltime", "must be at least the longest runtime %v (runtime×(1+runtimeJitter)), got %v", longest, g.Walltime.Duration)
			}
		}
		if g.Class == ClassGang && g.Members < 2 {
			add("generate.members", "a gang needs at least 2 members, got %d", g.Members)
		}
		if g.Class != ClassGang && g.Members != 0 {
			add("generate.members", "only for class gang")
		}
		if g.Class != ClassService && (g.Replicas != 0 || g.Diurnal) {
			add("generate.replicas", "replicas and diurnal are only for class service")
		}
	}
	return errors.Join(errs...)
}

func quantity(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s: required", field)
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("%s: %q is not a quantity: %w", field, s, err)
	}
	if q.Sign() <= 0 {
		return fmt.Errorf("%s: must be positive, got %q", field, s)
	}
	return nil
}
