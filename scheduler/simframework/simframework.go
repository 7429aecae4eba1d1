// Package simframework drives one profile of the kubehtc scheduler configuration through the real scheduling
// framework over an in-memory cluster, without an API server. `kubehtc sim --mode fast` (simulations/fast) uses
// it to replay traces in virtual time: the caller adds nodes, asks where a pod goes, and adds or removes pods
// as they bind and finish.
//
// Plugins come from the in-tree registry plus scheduler.Registry(), and the profile from scheduler.Config, so
// new kubehtc plugins are picked up without changes here. A plugin whose constructor needs what only a running
// cluster has (an API server to watch its CRDs, a DRA manager) is disabled for the run and reported by
// Disabled: results then describe the profile without it, and the report says so. A disabled queue-sort plugin
// is replaced by the in-tree PrioritySort.
//
// A scheduling attempt runs PreFilter, Filter on every node, PreScore, Score and Reserve, then binds the pod in
// the cache; ties between best nodes are broken by a seeded random choice, as kube-scheduler breaks them at
// random, and like kube-scheduler the search stops after percentageOfNodesToScore feasible nodes, starting
// where the previous search stopped. Not modelled: PostFilter (preemption), Permit waits (a pod whose Permit
// says Wait is not placed), PreBind/Bind plugins, nominated pods.
package simframework

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/queuesort"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedmetrics "k8s.io/kubernetes/pkg/scheduler/metrics"

	"github.com/kubehtc/kubehtc/scheduler"
)

// DisabledPlugin is a plugin of the profile that could not be built without an API server.
type DisabledPlugin struct {
	// Name of the plugin.
	Name string `json:"name"`
	// Reason is the constructor's error.
	Reason string `json:"reason"`
}

// Scheduler places pods of one profile on an in-memory cluster. It is not safe for concurrent use.
type Scheduler struct {
	fw       framework.Framework
	cache    cache.Cache
	snapshot *cache.Snapshot
	disabled []DisabledPlugin
	rng      *rand.Rand
	logger   klog.Logger
	cancel   context.CancelFunc
	// percentage is the profile's percentageOfNodesToScore (0: adaptive); nextStart is where the next
	// search over nodes begins, rotating as in kube-scheduler.
	percentage int32
	nextStart  int
}

// Profiles returns the scheduler names of the profiles in scheduler.Config.
func Profiles() ([]string, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(cfg.Profiles))
	for _, p := range cfg.Profiles {
		out = append(out, p.SchedulerName)
	}
	return out, nil
}

func loadConfig() (*config.KubeSchedulerConfiguration, error) {
	obj, _, err := scheme.Codecs.UniversalDecoder().Decode(scheduler.Config, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decoding the scheduler configuration: %w", err)
	}
	cfg, ok := obj.(*config.KubeSchedulerConfiguration)
	if !ok {
		return nil, fmt.Errorf("the scheduler configuration decodes to %T", obj)
	}
	return cfg, nil
}

// New builds the framework of profile (a schedulerName of scheduler.Config) with seed for tie-breaking. Close
// releases it.
func New(ctx context.Context, profile string, seed uint64) (*Scheduler, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, err
	}
	var prof *config.KubeSchedulerProfile
	for i := range cfg.Profiles {
		if cfg.Profiles[i].SchedulerName == profile {
			prof = cfg.Profiles[i].DeepCopy()
		}
	}
	if prof == nil {
		return nil, fmt.Errorf("profile %q is not in the scheduler configuration", profile)
	}
	// The cache reports its size as scheduler metrics; they must be registered (once per process) first.
	schedmetrics.Register()
	ctx, cancel := context.WithCancel(ctx)
	s := &Scheduler{
		cache:    cache.New(ctx, nil, false, false),
		snapshot: cache.NewEmptySnapshot(),
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		logger:   klog.FromContext(ctx),
		cancel:   cancel,
	}
	for name, reason := range needsCluster {
		s.disabled = append(s.disabled, DisabledPlugin{Name: name, Reason: reason})
		disable(prof, name)
	}
	failed := map[string]error{}
	registry := plugins.NewInTreeRegistry()
	out := frameworkruntime.Registry{}
	for _, opt := range scheduler.Registry() {
		if err := opt(out); err != nil {
			cancel()
			return nil, fmt.Errorf("registering kubehtc plugins: %w", err)
		}
	}
	if err := registry.Merge(out); err != nil {
		cancel()
		return nil, fmt.Errorf("merging plugin registries: %w", err)
	}
	for name, factory := range registry {
		registry[name] = func(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
			p, err := factory(ctx, obj, h)
			if err != nil {
				failed[name] = err
			}
			return p, err
		}
	}
	client := fake.NewClientset()
	// Each failed plugin is disabled and the framework rebuilt; the bound stops a plugin that fails for a
	// reason unrelated to its constructor from looping forever.
	for attempt := 0; ; attempt++ {
		clear(failed)
		// A fresh informer factory per attempt: plugins register indexers on it, which cannot be added twice.
		factory := informers.NewSharedInformerFactory(client, 0)
		s.fw, err = frameworkruntime.NewFramework(ctx, registry, prof,
			frameworkruntime.WithClientSet(client),
			frameworkruntime.WithInformerFactory(factory),
			frameworkruntime.WithSnapshotSharedLister(s.snapshot),
			frameworkruntime.WithParallelism(1),
		)
		if err == nil {
			break
		}
		if len(failed) == 0 || attempt > 20 {
			cancel()
			return nil, fmt.Errorf("building profile %q: %w", profile, err)
		}
		for name, ferr := range failed {
			s.disabled = append(s.disabled, DisabledPlugin{Name: name, Reason: ferr.Error()})
			disable(prof, name)
		}
	}
	sort.Slice(s.disabled, func(i, j int) bool { return s.disabled[i].Name < s.disabled[j].Name })
	if prof.PercentageOfNodesToScore != nil {
		s.percentage = *prof.PercentageOfNodesToScore
	} else if cfg.PercentageOfNodesToScore != nil {
		s.percentage = *cfg.PercentageOfNodesToScore
	}
	return s, nil
}

// needsCluster are in-tree plugins that build without an API server but fail when they run without one.
var needsCluster = map[string]string{
	// Its PreFilter reads the DRA manager, which is built from resource-claim and device-class informers.
	"DynamicResources": "needs the scheduler's DRA manager (resource claims, device classes); pods of a simulation claim no devices",
}

// disable removes name from every extension point of prof; an emptied queue sort falls back to PrioritySort.
func disable(prof *config.KubeSchedulerProfile, name string) {
	p := prof.Plugins
	for _, set := range []*config.PluginSet{&p.PreEnqueue, &p.QueueSort, &p.PreFilter, &p.Filter, &p.PostFilter,
		&p.PreScore, &p.Score, &p.Reserve, &p.Permit, &p.PreBind, &p.Bind, &p.PostBind, &p.MultiPoint} {
		kept := set.Enabled[:0]
		for _, pl := range set.Enabled {
			if pl.Name != name {
				kept = append(kept, pl)
			}
		}
		set.Enabled = kept
	}
	if len(p.QueueSort.Enabled) == 0 {
		p.QueueSort.Enabled = []config.Plugin{{Name: queuesort.Name}}
	}
}

// Disabled lists the profile's plugins that could not run without an API server, by name.
func (s *Scheduler) Disabled() []DisabledPlugin { return s.disabled }

// Close stops the framework's background work.
func (s *Scheduler) Close() {
	s.cancel()
}

// AddNode adds a node to the cluster.
func (s *Scheduler) AddNode(n *v1.Node) {
	s.cache.AddNode(s.logger, n)
}

// Less orders pending pods with the profile's queue-sort plugin; queued is when each pod entered the queue.
func (s *Scheduler) Less(a *v1.Pod, aQueued time.Time, b *v1.Pod, bQueued time.Time) bool {
	return s.fw.QueueSortFunc()(queued(a, aQueued), queued(b, bQueued))
}

func queued(p *v1.Pod, t time.Time) *framework.QueuedPodInfo {
	pi, _ := framework.NewPodInfo(p)
	return &framework.QueuedPodInfo{PodInfo: pi, QueueingParams: framework.QueueingParams{Timestamp: t, InitialAttemptTimestamp: &t}}
}

// ErrUnschedulable is returned (wrapped, with the plugins' reasons) when no node passes the filters.
var ErrUnschedulable = errors.New("unschedulable")

// Schedule finds the pod a node and binds it there in the cache; the returned pod is the bound copy to pass
// to Remove when it finishes. It returns an error wrapping ErrUnschedulable when no node fits.
func (s *Scheduler) Schedule(ctx context.Context, pod *v1.Pod) (*v1.Pod, error) {
	if err := s.cache.UpdateSnapshot(s.logger, s.snapshot); err != nil {
		return nil, fmt.Errorf("updating the snapshot: %w", err)
	}
	state := framework.NewCycleState()
	pre, st, _ := s.fw.RunPreFilterPlugins(ctx, state, pod)
	if !st.IsSuccess() {
		if st.IsRejected() {
			return nil, fmt.Errorf("%w: %s", ErrUnschedulable, st.Message())
		}
		return nil, fmt.Errorf("prefilter: %w", st.AsError())
	}
	all, err := s.snapshot.NodeInfos().List()
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	want := s.numFeasibleNodesToFind(int32(len(all)))
	feasible := make([]fwk.NodeInfo, 0, want)
	reasons := map[string]int{}
	processed := 0
	for i := range all {
		if len(feasible) >= int(want) {
			break
		}
		ni := all[(s.nextStart+i)%len(all)]
		processed++
		if pre != nil && !pre.AllNodes() && !pre.NodeNames.Has(ni.Node().Name) {
			continue
		}
		st := s.fw.RunFilterPlugins(ctx, state, pod, ni)
		if st.IsSuccess() {
			feasible = append(feasible, ni)
			continue
		}
		if !st.IsRejected() {
			return nil, fmt.Errorf("filter: %w", st.AsError())
		}
		reasons[st.Plugin()]++
	}
	if len(all) > 0 {
		s.nextStart = (s.nextStart + processed) % len(all)
	}
	if len(feasible) == 0 {
		return nil, fmt.Errorf("%w: 0/%d nodes fit (%s)", ErrUnschedulable, len(all), summarize(reasons))
	}
	best := feasible[0].Node().Name
	if len(feasible) > 1 {
		if st := s.fw.RunPreScorePlugins(ctx, state, pod, feasible); !st.IsSuccess() && !st.IsSkip() {
			return nil, fmt.Errorf("prescore: %w", st.AsError())
		}
		scores, st := s.fw.RunScorePlugins(ctx, state, pod, feasible)
		if !st.IsSuccess() {
			return nil, fmt.Errorf("score: %w", st.AsError())
		}
		best = s.pick(scores)
	}
	if st := s.fw.RunReservePluginsReserve(ctx, state, pod, best); !st.IsSuccess() {
		s.fw.RunReservePluginsUnreserve(ctx, state, pod, best)
		return nil, fmt.Errorf("%w: reserve: %s", ErrUnschedulable, st.Message())
	}
	if _, st := s.fw.RunPermitPlugins(ctx, state, pod, best); !st.IsSuccess() {
		s.fw.RunReservePluginsUnreserve(ctx, state, pod, best)
		return nil, fmt.Errorf("%w: permit (waiting is not simulated): %s", ErrUnschedulable, st.Message())
	}
	bound := pod.DeepCopy()
	bound.Spec.NodeName = best
	bound.Status.Phase = v1.PodRunning
	if err := s.cache.AddPod(s.logger, bound); err != nil {
		return nil, fmt.Errorf("binding: %w", err)
	}
	return bound, nil
}

// numFeasibleNodesToFind is how many feasible nodes a cycle looks for before scoring, with kube-scheduler's
// rule: all of them up to 100 nodes; else percentageOfNodesToScore, adaptive by default (50% minus 1% per 125
// nodes, at least 5%), and never fewer than 100.
func (s *Scheduler) numFeasibleNodesToFind(n int32) int32 {
	const minNodes, minPercentage = 100, 5
	if n < minNodes || s.percentage >= 100 {
		return n
	}
	pct := s.percentage
	if pct == 0 {
		pct = max(50-n/125, minPercentage)
	}
	return max(n*pct/100, minNodes)
}

// pick returns the node with the highest total score, choosing uniformly among ties.
func (s *Scheduler) pick(scores []fwk.NodePluginScores) string {
	best, ties := scores[0].Name, 1
	top := scores[0].TotalScore
	for _, ns := range scores[1:] {
		switch {
		case ns.TotalScore > top:
			best, top, ties = ns.Name, ns.TotalScore, 1
		case ns.TotalScore == top:
			ties++
			if s.rng.IntN(ties) == 0 {
				best = ns.Name
			}
		}
	}
	return best
}

// Remove takes a bound pod (as Schedule returned it) off its node.
func (s *Scheduler) Remove(pod *v1.Pod) error {
	if err := s.cache.RemovePod(s.logger, pod); err != nil {
		return fmt.Errorf("removing pod %s: %w", pod.Name, err)
	}
	return nil
}

func summarize(reasons map[string]int) string {
	parts := make([]string, 0, len(reasons))
	for p, n := range reasons {
		parts = append(parts, fmt.Sprintf("%d rejected by %s", n, p))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
