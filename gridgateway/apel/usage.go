package apel

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KubeletUsage samples every node's kubelet summary API (GET /api/v1/nodes/<node>/proxy/stats/summary,
// the source of metrics-server) and keeps, per Pod, the last cumulative CPU time and the highest working
// set seen. A node without a kubelet that answers (KWOK's simulated nodes) reports nothing, and its Pods'
// records are estimated. CPU used after the last sample is missing (at most Interval's worth).
type KubeletUsage struct {
	nodes client.Reader
	get   func(ctx context.Context, node string) ([]byte, error)
	// Interval between samples; 0 means 30 s.
	Interval time.Duration

	mu   sync.Mutex
	pods map[types.UID]*podUsage
}

type podUsage struct {
	cpuNanos  uint64
	peakBytes uint64
	seen      time.Time
}

// NewKubeletUsage samples through the API server's node proxy (RBAC: nodes/proxy get, nodes list).
func NewKubeletUsage(cfg *rest.Config, nodes client.Reader) *KubeletUsage {
	cs, err := kubernetes.NewForConfig(cfg)
	get := func(ctx context.Context, node string) ([]byte, error) {
		if err != nil {
			return nil, err
		}
		return cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy", "stats", "summary").DoRaw(ctx)
	}
	return &KubeletUsage{nodes: nodes, get: get, pods: map[types.UID]*podUsage{}}
}

// summary is the part of the kubelet's stats/summary document (k8s.io/kubelet/pkg/apis/stats/v1alpha1
// Summary) read here.
type summary struct {
	Pods []struct {
		PodRef struct {
			UID string `json:"uid"`
		} `json:"podRef"`
		CPU *struct {
			UsageCoreNanoSeconds *uint64 `json:"usageCoreNanoSeconds"`
		} `json:"cpu"`
		Memory *struct {
			WorkingSetBytes *uint64 `json:"workingSetBytes"`
		} `json:"memory"`
	} `json:"pods"`
}

// NeedLeaderElection: only the leader accounts.
func (k *KubeletUsage) NeedLeaderElection() bool { return true }

// Start samples until ctx ends.
func (k *KubeletUsage) Start(ctx context.Context) error {
	every := k.Interval
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		k.Sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample reads every node's summary once.
func (k *KubeletUsage) Sample(ctx context.Context) {
	logger := klog.FromContext(ctx)
	var nodes corev1.NodeList
	if err := k.nodes.List(ctx, &nodes); err != nil {
		logger.Error(err, "Listing nodes for usage sampling")
		return
	}
	now := time.Now()
	for i := range nodes.Items {
		raw, err := k.get(ctx, nodes.Items[i].Name)
		if err != nil {
			logger.V(4).Info("No usage from node", "node", nodes.Items[i].Name, "err", err)
			continue
		}
		if err := k.add(raw, now); err != nil {
			logger.V(4).Info("Unreadable usage summary", "node", nodes.Items[i].Name, "err", err)
		}
	}
	k.mu.Lock()
	for uid, u := range k.pods {
		if now.Sub(u.seen) > 6*time.Hour {
			delete(k.pods, uid)
		}
	}
	k.mu.Unlock()
}

func (k *KubeletUsage) add(raw []byte, now time.Time) error {
	var s summary
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("parsing stats summary: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range s.Pods {
		if p.PodRef.UID == "" || p.CPU == nil || p.CPU.UsageCoreNanoSeconds == nil {
			continue
		}
		uid := types.UID(p.PodRef.UID)
		u := k.pods[uid]
		if u == nil {
			u = &podUsage{}
			k.pods[uid] = u
		}
		u.cpuNanos = max(u.cpuNanos, *p.CPU.UsageCoreNanoSeconds)
		if p.Memory != nil && p.Memory.WorkingSetBytes != nil {
			u.peakBytes = max(u.peakBytes, *p.Memory.WorkingSetBytes)
		}
		u.seen = now
	}
	return nil
}

// PodUsage implements UsageSource.
func (k *KubeletUsage) PodUsage(uid types.UID) (float64, int64, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	u, ok := k.pods[uid]
	if !ok {
		return 0, 0, false
	}
	return float64(u.cpuNanos) / 1e9, int64(u.peakBytes), true
}
