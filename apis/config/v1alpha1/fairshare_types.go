package v1alpha1

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// DefaultMaxReclaimVictims is how many pods one reclaim may preempt by default.
const DefaultMaxReclaimVictims = 32

// FairShareArgs configure the FairShare plugin (queue limits and reclaim). The fair-share policy itself
// (half-life, core-equivalents) is not here: it is the root Queue's spec.policy, which the quota controller
// reads too, so the two cannot disagree.
type FairShareArgs struct {
	metav1.TypeMeta `json:",inline"`

	// Reclaim lets a queue below its target preempt pods of queues above theirs. Default true.
	// +optional
	Reclaim *bool `json:"reclaim,omitempty"`
	// MaxReclaimVictims bounds the pods one reclaim preempts (a gang counts all its members). Default 32.
	// +optional
	MaxReclaimVictims int32 `json:"maxReclaimVictims,omitempty"`
}

// DeepCopyInto copies args into out.
func (in *FairShareArgs) DeepCopyInto(out *FairShareArgs) {
	*out = *in
	if in.Reclaim != nil {
		v := *in.Reclaim
		out.Reclaim = &v
	}
}

// DeepCopy returns a copy of args.
func (in *FairShareArgs) DeepCopy() *FairShareArgs {
	if in == nil {
		return nil
	}
	out := new(FairShareArgs)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *FairShareArgs) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// SetDefaults_FairShareArgs fills every unset field of args with its default.
func SetDefaults_FairShareArgs(args *FairShareArgs) {
	if args.Reclaim == nil {
		v := true
		args.Reclaim = &v
	}
	if args.MaxReclaimVictims == 0 {
		args.MaxReclaimVictims = DefaultMaxReclaimVictims
	}
}

// ValidateFairShareArgs reports every invalid field of defaulted args.
func ValidateFairShareArgs(args *FairShareArgs) error {
	var errs []error
	if args.MaxReclaimVictims < 1 || args.MaxReclaimVictims > 10000 {
		errs = append(errs, fmt.Errorf("maxReclaimVictims: %d is not in [1, 10000]", args.MaxReclaimVictims))
	}
	return errors.Join(errs...)
}

// DecodeFairShareArgs turns what the scheduler passes to the plugin into defaulted, validated args.
// Unknown fields are errors.
func DecodeFairShareArgs(obj runtime.Object) (*FairShareArgs, error) {
	return decodeArgs(obj, "FairShareArgs", SetDefaults_FairShareArgs, ValidateFairShareArgs)
}
