package gang

import (
	"context"
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	schedv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"
)

// place finds a node for each pending member of a gang, all against the cycle's snapshot plus the placements
// already promised to other gangs, running the profile's PreFilter and Filter plugins for each member on working
// copies of the nodes. It returns the placement of as many members as fit if at least need fit, else nil and a
// message saying how many fit and why the next did not. The caller holds pl.mu.
//
// Node order is best fit, so that gangs pack: nodes this gang already uses first (locality for the gang's
// traffic), then, for members that request GPUs, the nodes with the fewest free GPUs; for the others, nodes
// without GPUs before GPU nodes, each by least free CPU.
func (pl *Gang) place(ctx context.Context, key string, pending []*v1.Pod, need int, pg *schedv1alpha1.PodGroup) (map[types.UID]string, string) {
	nodes, err := pl.handle.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return nil, fmt.Sprintf("gang %s: listing nodes: %v", key, err)
	}
	if len(pending) < need {
		return nil, fmt.Sprintf("%s: gang %s needs %d more pods, %d are pending", ReasonWaitingForMembers, key, need, len(pending))
	}
	// Working copies: a node is copied the first time a member or a reservation is added to it.
	work := make(map[string]fwk.NodeInfo)
	byName := make(map[string]fwk.NodeInfo, len(nodes))
	for _, ni := range nodes {
		byName[ni.Node().Name] = ni
	}
	working := func(name string) fwk.NodeInfo {
		if c, ok := work[name]; ok {
			return c
		}
		return byName[name]
	}
	addTo := func(name string, pod *v1.Pod) error {
		c, ok := work[name]
		if !ok {
			orig := byName[name]
			if orig == nil {
				return fmt.Errorf("node %s is not in the snapshot", name)
			}
			c = orig.Snapshot()
			work[name] = c
		}
		pi, err := framework.NewPodInfo(pod)
		if err != nil {
			return err
		}
		c.AddPodInfo(pi)
		return nil
	}
	for node, rs := range pl.reserved {
		for _, r := range rs {
			if r.gang == key {
				continue
			}
			if err := addTo(node, r.pod); err != nil {
				delete(pl.reserved, node) // the node is gone: its reservations cannot be honoured anyway
				break
			}
		}
	}
	if msg := pl.checkMinResources(key, pg, nodes, working); msg != "" {
		return nil, msg
	}

	// Largest members first: they are the hardest to place.
	members := append([]*v1.Pod(nil), pending...)
	reqs := make(map[types.UID]request, len(members))
	for _, m := range members {
		reqs[m.UID] = podRequest(m)
	}
	sort.SliceStable(members, func(i, j int) bool {
		a, b := reqs[members[i].UID], reqs[members[j].UID]
		if a.scalar[pl.gpu] != b.scalar[pl.gpu] {
			return a.scalar[pl.gpu] > b.scalar[pl.gpu]
		}
		if a.milliCPU != b.milliCPU {
			return a.milliCPU > b.milliCPU
		}
		return members[i].Name < members[j].Name
	})
	var total request
	for _, m := range members {
		total.add(reqs[m.UID])
	}
	order := pl.nodeOrder(nodes, reqs[members[0].UID], total)

	plan := make(map[types.UID]string, len(members))
	type placedMember struct {
		pod  *v1.Pod
		node string
	}
	var placed []placedMember
	var used []string
	why := ""
	for _, m := range members {
		st := framework.NewCycleState()
		st.Write(planningKey, planning{})
		res, s, _ := pl.runner.RunPreFilterPlugins(ctx, st, m)
		if !s.IsSuccess() {
			why = s.Message()
			break
		}
		for _, p := range placed {
			pi, err := framework.NewPodInfo(p.pod)
			if err != nil {
				return nil, fmt.Sprintf("gang %s: %v", key, err)
			}
			if s := pl.handle.RunPreFilterExtensionAddPod(ctx, st, m, pi, working(p.node)); !s.IsSuccess() {
				return nil, fmt.Sprintf("gang %s: %s", key, s.Message())
			}
		}
		req := reqs[m.UID]
		tried := map[string]bool{}
		chosen := ""
		try := func(name string) bool {
			if tried[name] {
				return false
			}
			tried[name] = true
			if res != nil && !res.AllNodes() && !res.NodeNames.Has(name) {
				return false
			}
			ni := working(name)
			if ni == nil {
				return false
			}
			if ok, res := fits(ni, req, request{}); !ok {
				why = "insufficient " + res
				return false
			}
			if len(ni.GetPods()) >= ni.GetAllocatable().GetAllowedPodNumber() {
				why = "too many pods"
				return false
			}
			if s := pl.handle.RunFilterPlugins(ctx, st, m, ni); !s.IsSuccess() {
				why = s.Message()
				return false
			}
			return true
		}
		for i := len(used) - 1; i >= 0 && chosen == ""; i-- {
			if try(used[i]) {
				chosen = used[i]
			}
		}
		for _, name := range order {
			if chosen != "" {
				break
			}
			if try(name) {
				chosen = name
			}
		}
		if chosen == "" {
			break
		}
		p := m.DeepCopy()
		p.Spec.NodeName = chosen
		if err := addTo(chosen, p); err != nil {
			return nil, fmt.Sprintf("gang %s: %v", key, err)
		}
		plan[m.UID] = chosen
		placed = append(placed, placedMember{pod: p, node: chosen})
		if len(used) == 0 || used[len(used)-1] != chosen {
			used = append(used, chosen)
		}
	}
	if len(plan) < need {
		return nil, fmt.Sprintf("gang %s needs %d pods (%s each), %d fit: %s", key, need, reqs[members[0].UID], len(plan), why)
	}
	return plan, ""
}

// nodeOrder sorts node names by best fit for a member requesting req (see place). Nodes that can hold the whole
// gang (total) come first, so that a gang that fits on one node is placed on one node — its members talk over
// the node's own links and no second node is broken up.
func (pl *Gang) nodeOrder(nodes []fwk.NodeInfo, req, total request) []string {
	type entry struct {
		name           string
		gpuNode        bool
		holdsAll       bool
		freeGPU, freeC int64
	}
	entries := make([]entry, 0, len(nodes))
	for _, ni := range nodes {
		alloc, used := ni.GetAllocatable(), ni.GetRequested()
		gpus := alloc.GetScalarResources()[pl.gpu]
		all, _ := fits(ni, total, request{})
		entries = append(entries, entry{
			name:     ni.Node().Name,
			gpuNode:  gpus > 0,
			holdsAll: all,
			freeGPU:  gpus - used.GetScalarResources()[pl.gpu],
			freeC:    alloc.GetMilliCPU() - used.GetMilliCPU(),
		})
	}
	wantsGPU := req.scalar[pl.gpu] > 0
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.holdsAll != b.holdsAll && (wantsGPU || a.gpuNode == b.gpuNode) {
			return a.holdsAll
		}
		if wantsGPU {
			if a.freeGPU != b.freeGPU {
				return a.freeGPU < b.freeGPU
			}
		} else if a.gpuNode != b.gpuNode {
			return !a.gpuNode
		}
		if a.freeC != b.freeC {
			return a.freeC < b.freeC
		}
		return a.name < b.name
	})
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.name
	}
	return out
}

// checkMinResources fails fast when the PodGroup's minResources exceed what is free in the whole cluster.
func (pl *Gang) checkMinResources(key string, pg *schedv1alpha1.PodGroup, nodes []fwk.NodeInfo, working func(string) fwk.NodeInfo) string {
	if len(pg.Spec.MinResources) == 0 {
		return ""
	}
	var free request
	for _, ni := range nodes {
		w := working(ni.Node().Name)
		alloc, used := w.GetAllocatable(), w.GetRequested()
		f := request{milliCPU: alloc.GetMilliCPU() - used.GetMilliCPU(), memory: alloc.GetMemory() - used.GetMemory()}
		for name, v := range alloc.GetScalarResources() {
			if f.scalar == nil {
				f.scalar = map[v1.ResourceName]int64{}
			}
			f.scalar[name] = v - used.GetScalarResources()[name]
		}
		free.add(f)
	}
	min := request{milliCPU: pg.Spec.MinResources.Cpu().MilliValue(), memory: pg.Spec.MinResources.Memory().Value()}
	for name, q := range pg.Spec.MinResources {
		if name != v1.ResourceCPU && name != v1.ResourceMemory {
			if min.scalar == nil {
				min.scalar = map[v1.ResourceName]int64{}
			}
			min.scalar[name] = q.Value()
		}
	}
	if free.milliCPU < min.milliCPU || free.memory < min.memory {
		return fmt.Sprintf("gang %s needs minResources %s, the cluster has %s free", key, min, free)
	}
	for name, v := range min.scalar {
		if free.scalar[name] < v {
			return fmt.Sprintf("gang %s needs minResources %s, the cluster has %s free", key, min, free)
		}
	}
	return ""
}
