package fairshare

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// MaxStatusUsers is how many users of a leaf queue its status keeps (the CRD's bound): those with the most
// decayed usage, so the users that matter for ranking survive a restart.
const MaxStatusUsers = 100

// negligible is the decayed usage (core-equivalents) below which an idle user is dropped from status.
const negligible = 0.0005

// DecayFrom sets n's and its users' decayed usage for an accounting interval ending at now, from the status
// the previous interval wrote: U ← β·U(prev) + (1−β)·u, β = 0.5^((now − prev.lastAccountingTime)/halfLife).
// A queue never accounted starts from zero; a user only in the previous status (idle now) decays towards 0.
// The quota controller and the simulator (scheduler/simframework) both account with it.
func (n *Node) DecayFrom(prev *kubehtcv1alpha1.QueueStatus, now time.Time, halfLife time.Duration) {
	var dt time.Duration
	var prevD float64
	prevUsers := map[string]float64{}
	if prev.LastAccountingTime != nil {
		dt = now.Sub(prev.LastAccountingTime.Time)
		if prev.DecayedUsage != nil {
			prevD = prev.DecayedUsage.AsApproximateFloat64()
		}
		for _, u := range prev.Users {
			prevUsers[u.Name] = u.DecayedUsage.AsApproximateFloat64()
		}
	}
	n.Decayed = Decay(prevD, n.Usage, dt, halfLife)
	if !n.IsLeaf() {
		return
	}
	for name := range prevUsers {
		if n.Users[name] == nil {
			n.Users[name] = &User{Name: name}
		}
	}
	for name, u := range n.Users {
		u.Decayed = Decay(prevUsers[name], u.Usage, dt, halfLife)
	}
}

// FillStatus writes what an accounting interval computed for n into st: core-equivalent and decayed usage,
// share, target, rank, the accounting time and, for a leaf, its users with running pods or a non-negligible
// decayed usage (most used first, at most MaxStatusUsers). runningUsers counts the leaf's running pods per
// user. Fields only the caller knows (requests, pod counts, conditions) are left alone.
func FillStatus(st *kubehtcv1alpha1.QueueStatus, n *Node, r *Ranking, runningUsers map[string]int32, now time.Time) {
	st.UsageCoreEquivalents = milli(n.Usage)
	st.DecayedUsage = milli(n.Decayed)
	st.Share = strconv.FormatFloat(n.Share, 'f', 3, 64)
	st.Target = milli(n.Target)
	st.Rank = int32(r.QueueRank[n.Name])
	st.LastAccountingTime = &metav1.MicroTime{Time: now}
	st.Users = nil
	if !n.IsLeaf() {
		return
	}
	users := make([]*User, 0, len(n.Users))
	for _, u := range n.Users {
		if u.Decayed >= negligible || runningUsers[u.Name] > 0 {
			users = append(users, u)
		}
	}
	slices.SortFunc(users, func(a, b *User) int {
		return cmp.Or(cmp.Compare(b.Decayed, a.Decayed), cmp.Compare(a.Name, b.Name))
	})
	for _, u := range users[:min(len(users), MaxStatusUsers)] {
		st.Users = append(st.Users, kubehtcv1alpha1.UserUsage{Name: u.Name, DecayedUsage: *milli(u.Decayed), RunningPods: runningUsers[u.Name]})
	}
}

// milli is v as a quantity with milli precision (status fields are quantities).
func milli(v float64) *resource.Quantity {
	return resource.NewMilliQuantity(int64(v*1000+0.5), resource.DecimalSI)
}
