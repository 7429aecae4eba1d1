package gang

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/kubehtc/kubehtc/scheduler/internal/podgroup"
)

// Reserve records a member as assumed: the scheduler's cache now holds its resources, so its reservation ends.
func (pl *Gang) Reserve(_ context.Context, _ fwk.CycleState, pod *v1.Pod, _ string) *fwk.Status {
	key, ok := podgroup.Key(pod)
	if !ok {
		return nil
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	g := pl.gangLocked(key)
	g.assumed[pod.UID] = pl.now()
	if node, ok := g.plan[pod.UID]; ok {
		delete(g.plan, pod.UID)
		delete(pl.reserved[node], pod.UID)
		if len(pl.reserved[node]) == 0 {
			delete(pl.reserved, node)
		}
	}
	return nil
}

// Unreserve runs when a member fails after Reserve (rejected at Permit, timed out, or its binding failed): the
// whole gang is released and retried together.
func (pl *Gang) Unreserve(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, _ string) {
	key, ok := podgroup.Key(pod)
	if !ok {
		return
	}
	pl.mu.Lock()
	if g := pl.gangs[key]; g != nil {
		delete(g.assumed, pod.UID)
	}
	pl.mu.Unlock()
	pl.release(ctx, key, fmt.Sprintf("member %s was unreserved", pod.Name))
}

// Permit holds a member until minMember members of its gang are assumed or bound, then lets them all bind.
func (pl *Gang) Permit(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, _ string) (*fwk.Status, time.Duration) {
	key, ok := podgroup.Key(pod)
	if !ok {
		return nil, 0
	}
	pg := pl.store.Get(key)
	if pg == nil {
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("%s: %s", ReasonPodGroupNotFound, key)), 0
	}
	members := pl.store.Members(key)
	pl.mu.Lock()
	g := pl.gangLocked(key)
	done := pl.quorumLocked(g, members)
	wait := pl.timeout(pg)
	if !g.deadline.IsZero() {
		if left := g.deadline.Sub(pl.now()); left < wait {
			wait = max(left, time.Second)
		}
	}
	pl.mu.Unlock()
	if int32(done) < minMember(pg) {
		klog.FromContext(ctx).V(4).Info("Gang member waits", "pod", klog.KObj(pod), "podGroup", key, "ready", done, "minMember", minMember(pg))
		return fwk.NewStatus(fwk.Wait, fmt.Sprintf("gang %s: %d of %d members ready", key, done, minMember(pg))), wait
	}
	pl.handle.IterateOverWaitingPods(func(wp fwk.WaitingPod) {
		if k, ok := podgroup.Key(wp.GetPod()); ok && k == key {
			wp.Allow(Name)
		}
	})
	klog.FromContext(ctx).V(2).Info("Gang ready", "podGroup", key, "members", done)
	return nil, 0
}
