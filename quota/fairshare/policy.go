package fairshare

import (
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// Defaults of the site policy (the root Queue's spec.policy).
const (
	DefaultHalfLife           = 24 * time.Hour
	DefaultAccountingInterval = time.Minute
)

// DefaultCoreEquivalents are what one CPU core is worth in other resources when the root Queue sets none:
// 4 GiB of memory, an eighth of a GPU (a GPU is worth 8 cores).
func DefaultCoreEquivalents() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:          resource.MustParse("1"),
		corev1.ResourceMemory:       resource.MustParse("4Gi"),
		kubehtcv1alpha1.GPUResource: resource.MustParse("125m"),
	}
}

// Policy are the site-wide settings, defaulted and validated.
type Policy struct {
	// HalfLife of decayed usage; always > 0.
	HalfLife time.Duration
	// AccountingInterval of the quota controller; always > 0.
	AccountingInterval time.Duration
	// coreEquivalents maps a charged resource to the amount worth one core (> 0).
	coreEquivalents map[corev1.ResourceName]float64
}

// ErrZeroHalfLife is returned for a half-life that is not positive: it would silently turn decayed usage
// into current usage (the Kueue foot-gun), so it is an error rather than a default.
var ErrZeroHalfLife = errors.New("halfLife must be positive (0 would disable usage history)")

// PolicyFor returns the policy of the root Queue (nil: no root, all defaults). The API server already
// applies the CRD's defaults and rejects a zero half-life; this checks again because the scheduler and the
// controller must compute the same thing from the same object.
func PolicyFor(root *kubehtcv1alpha1.Queue) (Policy, error) {
	p := Policy{HalfLife: DefaultHalfLife, AccountingInterval: DefaultAccountingInterval}
	eq := DefaultCoreEquivalents()
	if root != nil && root.Spec.Policy != nil {
		// The API server defaults an omitted halfLife to 24h and refuses 0, so a policy carrying 0 was built
		// around the API: refuse it too rather than treat it as "use the default".
		sp := root.Spec.Policy
		p.HalfLife = sp.HalfLife.Duration
		if sp.AccountingInterval.Duration != 0 {
			p.AccountingInterval = sp.AccountingInterval.Duration
		}
		if len(sp.CoreEquivalents) > 0 {
			eq = sp.CoreEquivalents
		}
	}
	if p.HalfLife <= 0 {
		return Policy{}, ErrZeroHalfLife
	}
	if p.AccountingInterval <= 0 {
		return Policy{}, fmt.Errorf("accountingInterval must be positive, got %s", p.AccountingInterval)
	}
	p.coreEquivalents = make(map[corev1.ResourceName]float64, len(eq))
	for r, q := range eq {
		v := q.AsApproximateFloat64()
		if v <= 0 {
			return Policy{}, fmt.Errorf("coreEquivalents[%s]: %s must be positive", r, q.String())
		}
		p.coreEquivalents[r] = v
	}
	return p, nil
}

// Charge returns the core-equivalents of a set of requests: the largest of request_r / coreEquivalent_r over
// the charged resources (the dominant resource). Resources the policy does not list cost nothing.
func (p Policy) Charge(req corev1.ResourceList) float64 {
	var c float64
	for r, q := range req {
		eq, ok := p.coreEquivalents[r]
		if !ok {
			continue
		}
		if v := q.AsApproximateFloat64() / eq; v > c {
			c = v
		}
	}
	return c
}
