// Package fairshare is the scheduler's shared view of the fair-share order: which queue and user a pod belongs to
// and where that (queue, user) stands in the hierarchical Fair Tree ranking. The QueueOrder plugin (queue sort)
// and the FairShare plugin (limits, reclaim) both use it; the arithmetic itself lives in the pure package
// github.com/kubehtc/kubehtc/quota/fairshare.
package fairshare

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	fwk "k8s.io/kube-scheduler/framework"
)

// Ranker tells the fair-share position of a pod.
type Ranker interface {
	// Rank returns the pod's position in the fair-share order: lower is served first. Pods outside fair share
	// (their namespace has no queue, e.g. web services) rank 0; pods of queues rank from 1 in Fair Tree order,
	// so that every user of a queue that is ahead ranks before every user of a queue that is behind.
	Rank(pod *v1.Pod) int
}

// NewRankerFunc builds the Ranker of one scheduler (one informer factory). Set by the implementation in this
// package; nil means fair share is not built in and every pod ranks 0.
var NewRankerFunc func(h fwk.Handle) (Ranker, error)

var (
	mu      sync.Mutex
	rankers = map[any]Ranker{}
)

// For returns the Ranker shared by all plugins and profiles of the scheduler that h belongs to (keyed by its
// informer factory, which all profiles share), creating it on first use.
func For(h fwk.Handle) (Ranker, error) {
	mu.Lock()
	defer mu.Unlock()
	key := any(h.SharedInformerFactory())
	if r, ok := rankers[key]; ok {
		return r, nil
	}
	var r Ranker = flat{}
	if NewRankerFunc != nil {
		var err error
		if r, err = NewRankerFunc(h); err != nil {
			return nil, err
		}
	}
	rankers[key] = r
	return r, nil
}

// flat ranks every pod 0: the order is then priority, gang, FIFO.
type flat struct{}

func (flat) Rank(*v1.Pod) int { return 0 }
