package v1alpha1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// Default values of PackSpreadArgs.
const (
	DefaultClassLabel              = kubehtcv1alpha1.ClassLabel
	DefaultGPUResource             = string(kubehtcv1alpha1.GPUResource)
	DefaultGPUNodePenalty          = 100
	DefaultNodeSpreadWeight        = 4
	DefaultZoneSpreadWeight        = 2
	DefaultLeastAllocatedWeight    = 1
	DefaultFragmentationGPURequest = 8
	// PodGroupLabel is the label by which pods join a scheduler-plugins PodGroup.
	PodGroupLabel = "scheduling.x-k8s.io/pod-group"
)

// SetDefaults_PackSpreadArgs fills every unset field of args with its default.
func SetDefaults_PackSpreadArgs(args *PackSpreadArgs) {
	if args.ClassLabel == "" {
		args.ClassLabel = DefaultClassLabel
	}
	if args.ServiceOwnerKinds == nil {
		args.ServiceOwnerKinds = []string{"ReplicaSet", "StatefulSet", "ReplicationController", "DaemonSet"}
	}
	if args.BatchOwnerKinds == nil {
		args.BatchOwnerKinds = []string{"Job", "GridJob"}
	}
	if args.BatchLabels == nil {
		args.BatchLabels = []string{PodGroupLabel}
	}
	if args.DefaultClass == "" {
		args.DefaultClass = ClassBatch
	}
	if args.GPUResource == "" {
		args.GPUResource = DefaultGPUResource
	}
	if args.ResourceWeights == nil {
		args.ResourceWeights = map[string]int64{"cpu": 1, "memory": 1}
	}
	setDefault := func(p **int64, v int64) {
		if *p == nil {
			*p = &v
		}
	}
	setDefault(&args.GPUNodePenalty, DefaultGPUNodePenalty)
	setDefault(&args.NodeSpreadWeight, DefaultNodeSpreadWeight)
	setDefault(&args.ZoneSpreadWeight, DefaultZoneSpreadWeight)
	setDefault(&args.LeastAllocatedWeight, DefaultLeastAllocatedWeight)
	if args.FragmentationGPURequest == 0 {
		args.FragmentationGPURequest = DefaultFragmentationGPURequest
	}
}

// ValidatePackSpreadArgs reports every invalid field of defaulted args, each error naming the field.
func ValidatePackSpreadArgs(args *PackSpreadArgs) error {
	var errs []error
	if msgs := validation.IsQualifiedName(args.ClassLabel); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("classLabel: %q: %s", args.ClassLabel, strings.Join(msgs, "; ")))
	}
	if !slices.Contains([]WorkloadClass{ClassBatch, ClassService, ClassGPU}, args.DefaultClass) {
		errs = append(errs, fmt.Errorf("defaultClass: %q is not one of batch, service, gpu", args.DefaultClass))
	}
	if msgs := validation.IsQualifiedName(args.GPUResource); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("gpuResource: %q: %s", args.GPUResource, strings.Join(msgs, "; ")))
	}
	for _, k := range args.BatchLabels {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("batchLabels: %q: %s", k, strings.Join(msgs, "; ")))
		}
	}
	for _, kind := range append(slices.Clone(args.ServiceOwnerKinds), args.BatchOwnerKinds...) {
		if kind == "" {
			errs = append(errs, errors.New("serviceOwnerKinds/batchOwnerKinds: empty kind"))
		}
	}
	for _, kind := range args.ServiceOwnerKinds {
		if slices.Contains(args.BatchOwnerKinds, kind) {
			errs = append(errs, fmt.Errorf("serviceOwnerKinds: %q is also in batchOwnerKinds", kind))
		}
	}
	var total int64
	for r, w := range args.ResourceWeights {
		if r != "cpu" && r != "memory" {
			errs = append(errs, fmt.Errorf("resourceWeights: %q: only cpu and memory are weighed", r))
		}
		if w < 0 || w > 100 {
			errs = append(errs, fmt.Errorf("resourceWeights[%s]: %d is not in [0, 100]", r, w))
		}
		total += w
	}
	if total <= 0 {
		errs = append(errs, errors.New("resourceWeights: at least one weight must be positive"))
	}
	if p := *args.GPUNodePenalty; p < 0 || p > 100 {
		errs = append(errs, fmt.Errorf("gpuNodePenalty: %d is not in [0, 100]", p))
	}
	for _, w := range []struct {
		name string
		v    int64
	}{{"nodeSpreadWeight", *args.NodeSpreadWeight}, {"zoneSpreadWeight", *args.ZoneSpreadWeight}, {"leastAllocatedWeight", *args.LeastAllocatedWeight}} {
		if w.v < 0 || w.v > 100 {
			errs = append(errs, fmt.Errorf("%s: %d is not in [0, 100]", w.name, w.v))
		}
	}
	if *args.NodeSpreadWeight+*args.ZoneSpreadWeight+*args.LeastAllocatedWeight == 0 {
		errs = append(errs, errors.New("nodeSpreadWeight, zoneSpreadWeight, leastAllocatedWeight: at least one must be positive"))
	}
	if args.FragmentationGPURequest < 1 {
		errs = append(errs, fmt.Errorf("fragmentationGPURequest: %d must be at least 1", args.FragmentationGPURequest))
	}
	return errors.Join(errs...)
}

// DecodePackSpreadArgs turns the args the scheduler passes to the plugin (nil, *PackSpreadArgs, or the
// runtime.Unknown of an unregistered type) into defaulted, validated args. Unknown fields are errors.
func DecodePackSpreadArgs(obj runtime.Object) (*PackSpreadArgs, error) {
	return decodeArgs(obj, "PackSpreadArgs", SetDefaults_PackSpreadArgs, ValidatePackSpreadArgs)
}

// decodeArgs is the Decode* of every args type: nil gives the defaults; a *T is copied; the raw JSON of a
// runtime.Unknown is decoded strictly. Then the defaults are set and the result validated.
func decodeArgs[T any, PT interface {
	*T
	runtime.Object
}](obj runtime.Object, kind string, setDefaults func(PT), validate func(PT) error) (PT, error) {
	args := PT(new(T))
	switch o := obj.(type) {
	case nil:
	case PT:
		args = o.DeepCopyObject().(PT)
	case *runtime.Unknown:
		if len(o.Raw) > 0 {
			dec := json.NewDecoder(bytes.NewReader(o.Raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(args); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", kind, err)
			}
		}
	default:
		return nil, fmt.Errorf("want args of type %s, got %T", kind, obj)
	}
	setDefaults(args)
	if err := validate(args); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", kind, err)
	}
	return args, nil
}
