package v1alpha1

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
)

// WalltimeAnnotation is the pod annotation that declares how long the pod runs at most, as a Go duration
// ("6h", "90m"). The grid gateway sets it from the job description (xRSL wallTime, ADL WallTime); Kubeflow
// and Job users set it in the pod template. spec.activeDeadlineSeconds, when set, takes precedence: the
// kubelet enforces it.
const WalltimeAnnotation = "kubehtc.io/walltime"

// BackfillArgs configure the Backfill plugin: reservations for the top-ranked big jobs that cannot start, and
// backfill of other pods around them, driven by walltimes.
type BackfillArgs struct {
	metav1.TypeMeta `json:",inline"`

	// MaxReservations is how many jobs hold a reservation at once (Slurm's bf_max_job_test plays this role).
	// Default 4; between 1 and 64.
	// +optional
	MaxReservations int32 `json:"maxReservations,omitempty"`
	// BigPodRequests make a single pod (not in a gang) "big", eligible for a reservation, when it requests at
	// least one of these amounts. Every gang of more than one pod is big. Default {nvidia.com/gpu: 2}.
	// +optional
	BigPodRequests map[string]resource.Quantity `json:"bigPodRequests,omitempty"`
	// DefaultWalltimes give a walltime to pods that declare none (no activeDeadlineSeconds, no
	// kubehtc.io/walltime annotation): the first entry whose namespace (a queue's namespace) and class
	// (label kubehtc.io/class) match; an empty field matches any. A pod left without walltime never backfills
	// into reserved capacity and its node's capacity is never promised to a reservation.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	DefaultWalltimes []DefaultWalltime `json:"defaultWalltimes,omitempty"`
	// ClassLabel is the pod label that DefaultWalltimes' class matches. Default kubehtc.io/class.
	// +optional
	ClassLabel string `json:"classLabel,omitempty"`
}

// DefaultWalltime is a walltime for the pods of a namespace and class that declare none.
type DefaultWalltime struct {
	// Namespace the pod is in; empty matches any.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Class is the value of the pod's class label; empty matches any.
	// +optional
	Class string `json:"class,omitempty"`
	// Walltime is a Go duration, more than 0.
	// +required
	Walltime metav1.Duration `json:"walltime"`
}

// DefaultMaxReservations is MaxReservations' default.
const DefaultMaxReservations = 4

// SetDefaults_BackfillArgs fills every unset field of args with its default.
func SetDefaults_BackfillArgs(args *BackfillArgs) {
	if args.MaxReservations == 0 {
		args.MaxReservations = DefaultMaxReservations
	}
	if args.BigPodRequests == nil {
		args.BigPodRequests = map[string]resource.Quantity{DefaultGPUResource: resource.MustParse("2")}
	}
	if args.ClassLabel == "" {
		args.ClassLabel = DefaultClassLabel
	}
}

// ValidateBackfillArgs reports every invalid field of defaulted args, each error naming the field.
func ValidateBackfillArgs(args *BackfillArgs) error {
	var errs []error
	if n := args.MaxReservations; n < 1 || n > 64 {
		errs = append(errs, fmt.Errorf("maxReservations: %d is not in [1, 64]", n))
	}
	for name, q := range args.BigPodRequests {
		if msgs := validation.IsQualifiedName(name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("bigPodRequests[%q]: %s", name, strings.Join(msgs, "; ")))
		}
		if q.Sign() <= 0 {
			errs = append(errs, fmt.Errorf("bigPodRequests[%q]: %s is not more than 0", name, q.String()))
		}
	}
	if len(args.DefaultWalltimes) > 64 {
		errs = append(errs, fmt.Errorf("defaultWalltimes: %d entries, at most 64", len(args.DefaultWalltimes)))
	}
	for i, d := range args.DefaultWalltimes {
		if d.Walltime.Duration <= 0 || d.Walltime.Duration > 366*24*time.Hour {
			errs = append(errs, fmt.Errorf("defaultWalltimes[%d].walltime: %s is not in (0, 8784h]", i, d.Walltime.Duration))
		}
		if d.Namespace != "" {
			if msgs := validation.IsDNS1123Label(d.Namespace); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("defaultWalltimes[%d].namespace: %q: %s", i, d.Namespace, strings.Join(msgs, "; ")))
			}
		}
	}
	if msgs := validation.IsQualifiedName(args.ClassLabel); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("classLabel: %q: %s", args.ClassLabel, strings.Join(msgs, "; ")))
	}
	return errors.Join(errs...)
}

// DecodeBackfillArgs turns what the scheduler passes to the plugin (nil, *BackfillArgs, or runtime.Unknown)
// into defaulted, validated args. Unknown fields are errors.
func DecodeBackfillArgs(obj runtime.Object) (*BackfillArgs, error) {
	return decodeArgs(obj, "BackfillArgs", SetDefaults_BackfillArgs, ValidateBackfillArgs)
}

// DeepCopyInto copies args into out.
func (in *BackfillArgs) DeepCopyInto(out *BackfillArgs) {
	*out = *in
	if in.BigPodRequests != nil {
		out.BigPodRequests = make(map[string]resource.Quantity, len(in.BigPodRequests))
		for k, v := range in.BigPodRequests {
			out.BigPodRequests[k] = v.DeepCopy()
		}
	}
	out.DefaultWalltimes = append([]DefaultWalltime(nil), in.DefaultWalltimes...)
}

// DeepCopy returns a copy of args.
func (in *BackfillArgs) DeepCopy() *BackfillArgs {
	if in == nil {
		return nil
	}
	out := new(BackfillArgs)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *BackfillArgs) DeepCopyObject() runtime.Object { return in.DeepCopy() }
