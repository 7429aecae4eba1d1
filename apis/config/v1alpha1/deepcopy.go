// Hand-written: PackSpreadArgs is not a CRD, so controller-gen does not cover it here.
package v1alpha1

import "k8s.io/apimachinery/pkg/runtime"

// DeepCopyInto copies args into out.
func (in *PackSpreadArgs) DeepCopyInto(out *PackSpreadArgs) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	out.ServiceOwnerKinds = cloneStrings(in.ServiceOwnerKinds)
	out.BatchOwnerKinds = cloneStrings(in.BatchOwnerKinds)
	out.BatchLabels = cloneStrings(in.BatchLabels)
	if in.ResourceWeights != nil {
		out.ResourceWeights = make(map[string]int64, len(in.ResourceWeights))
		for k, v := range in.ResourceWeights {
			out.ResourceWeights[k] = v
		}
	}
	for _, p := range []struct{ dst, src **int64 }{
		{&out.GPUNodePenalty, &in.GPUNodePenalty}, {&out.NodeSpreadWeight, &in.NodeSpreadWeight},
		{&out.ZoneSpreadWeight, &in.ZoneSpreadWeight}, {&out.LeastAllocatedWeight, &in.LeastAllocatedWeight},
	} {
		if *p.src != nil {
			v := **p.src
			*p.dst = &v
		}
	}
}

// DeepCopy returns a copy of args.
func (in *PackSpreadArgs) DeepCopy() *PackSpreadArgs {
	if in == nil {
		return nil
	}
	out := new(PackSpreadArgs)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *PackSpreadArgs) DeepCopyObject() runtime.Object { return in.DeepCopy() }

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}
