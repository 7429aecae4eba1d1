// Package queueorder is the QueueOrder plugin, the kubehtc profile's one QueueSort. A profile can have only
// one queue sort, and both fair share and gang scheduling need the order, so it combines them. An entity
// comes before another when, in turn:
//
//  1. its priority is higher (PriorityClass first, as in the default PrioritySort);
//  2. its fair-share rank is better: pods of a queue that is behind its share come first, and inside a queue
//     the users that used least (scheduler/internal/fairshare; pods outside fair share rank 0);
//  3. its gang was submitted earlier: all members of a PodGroup share the PodGroup's creation time and key, so
//     they sit next to each other in the queue and are scheduled one after another, which lets the Gang
//     plugin's whole-gang placement complete quickly;
//  4. it entered the queue earlier (FIFO).
//
// All profiles of a scheduler share its one queue, so they must share the queue sort. Pods of the stock
// default-scheduler profile keep the stock order (priority, then FIFO): fair share and gang grouping apply to
// pods of kubehtc's profiles only, so that the default profile stays a faithful baseline for comparisons.
package queueorder

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/kubehtc/kubehtc/scheduler/internal/fairshare"
	"github.com/kubehtc/kubehtc/scheduler/internal/podgroup"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "QueueOrder"

// QueueOrder sorts the scheduling queue by priority, fair share, gang and arrival.
type QueueOrder struct {
	ranker fairshare.Ranker
	groups *podgroup.Store
}

var _ fwk.QueueSortPlugin = &QueueOrder{}

// New builds the plugin. It takes no args.
func New(_ context.Context, _ runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	r, err := fairshare.For(h)
	if err != nil {
		return nil, err
	}
	s, err := podgroup.For(h)
	if err != nil {
		return nil, err
	}
	return &QueueOrder{ranker: r, groups: s}, nil
}

// Name returns the plugin's name.
func (pl *QueueOrder) Name() string { return Name }

// key is what Less compares, in order.
type key struct {
	priority int32
	rank     int
	since    time.Time // the gang's submission, else the entity's queue timestamp
	gang     string
	queued   time.Time
}

func (pl *QueueOrder) key(e fwk.QueuedEntityInfo) key {
	k := key{priority: e.GetPriority(), queued: e.GetTimestamp()}
	k.since = k.queued
	pod := podOf(e)
	if pod == nil || pod.Spec.SchedulerName == v1.DefaultSchedulerName || pod.Spec.SchedulerName == "" {
		return k
	}
	k.rank = pl.ranker.Rank(pod)
	if g, ok := podgroup.Key(pod); ok {
		k.gang = g
		if pg := pl.groups.Get(g); pg != nil {
			k.since = pg.CreationTimestamp.Time
		} else {
			k.since = pod.CreationTimestamp.Time
		}
	}
	return k
}

// Less reports whether e1 is scheduled before e2.
func (pl *QueueOrder) Less(e1, e2 fwk.QueuedEntityInfo) bool {
	a, b := pl.key(e1), pl.key(e2)
	return less(a, b)
}

func less(a, b key) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	if !a.since.Equal(b.since) {
		return a.since.Before(b.since)
	}
	if a.gang != b.gang {
		return a.gang < b.gang
	}
	return a.queued.Before(b.queued)
}

// podOf returns the pod of a single-pod entity, nil for upstream pod-group entities.
func podOf(e fwk.QueuedEntityInfo) *v1.Pod {
	if pi, ok := e.(interface{ GetPodInfo() fwk.PodInfo }); ok && pi.GetPodInfo() != nil {
		return pi.GetPodInfo().GetPod()
	}
	return nil
}
