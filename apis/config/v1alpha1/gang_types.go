package v1alpha1

import (
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
)

// GangArgs configure the Gang plugin (all-or-nothing scheduling of scheduling.x-k8s.io PodGroups).
type GangArgs struct {
	metav1.TypeMeta `json:",inline"`

	// DefaultScheduleTimeoutSeconds is how long a gang's placement is held for its members, and how long placed
	// members wait at Permit for the rest, when the PodGroup does not set spec.scheduleTimeoutSeconds.
	// Default 60; between 1 and 86400.
	// +optional
	DefaultScheduleTimeoutSeconds int32 `json:"defaultScheduleTimeoutSeconds,omitempty"`
	// EventIntervalSeconds is the least time between two "cannot fit" Events on one PodGroup, so that a gang
	// retried every few seconds does not flood the API server. Default 30; 0 records every failure.
	// +optional
	EventIntervalSeconds *int32 `json:"eventIntervalSeconds,omitempty"`
	// GPUResource is the extended resource that counts GPUs: members that request none are placed on nodes
	// without it first, and GPU members best-fit onto the nodes with the fewest free GPUs. Default nvidia.com/gpu.
	// +optional
	GPUResource string `json:"gpuResource,omitempty"`
}

// Default values of GangArgs.
const (
	DefaultGangScheduleTimeoutSeconds = 60
	DefaultGangEventIntervalSeconds   = 30
)

// SetDefaults_GangArgs fills every unset field of args with its default.
func SetDefaults_GangArgs(args *GangArgs) {
	if args.DefaultScheduleTimeoutSeconds == 0 {
		args.DefaultScheduleTimeoutSeconds = DefaultGangScheduleTimeoutSeconds
	}
	if args.EventIntervalSeconds == nil {
		v := int32(DefaultGangEventIntervalSeconds)
		args.EventIntervalSeconds = &v
	}
	if args.GPUResource == "" {
		args.GPUResource = DefaultGPUResource
	}
}

// ValidateGangArgs reports every invalid field of defaulted args, each error naming the field.
func ValidateGangArgs(args *GangArgs) error {
	var errs []error
	if t := args.DefaultScheduleTimeoutSeconds; t < 1 || t > 86400 {
		errs = append(errs, fmt.Errorf("defaultScheduleTimeoutSeconds: %d is not in [1, 86400]", t))
	}
	if v := *args.EventIntervalSeconds; v < 0 || v > 86400 {
		errs = append(errs, fmt.Errorf("eventIntervalSeconds: %d is not in [0, 86400]", v))
	}
	if msgs := validation.IsQualifiedName(args.GPUResource); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("gpuResource: %q: %s", args.GPUResource, strings.Join(msgs, "; ")))
	}
	return errors.Join(errs...)
}

// DecodeGangArgs turns what the scheduler passes to the plugin (nil, *GangArgs, or runtime.Unknown) into
// defaulted, validated args. Unknown fields are errors.
func DecodeGangArgs(obj runtime.Object) (*GangArgs, error) {
	return decodeArgs(obj, "GangArgs", SetDefaults_GangArgs, ValidateGangArgs)
}

// DeepCopyInto copies args into out.
func (in *GangArgs) DeepCopyInto(out *GangArgs) {
	*out = *in
	if in.EventIntervalSeconds != nil {
		v := *in.EventIntervalSeconds
		out.EventIntervalSeconds = &v
	}
}

// DeepCopy returns a copy of args.
func (in *GangArgs) DeepCopy() *GangArgs {
	if in == nil {
		return nil
	}
	out := new(GangArgs)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *GangArgs) DeepCopyObject() runtime.Object { return in.DeepCopy() }
