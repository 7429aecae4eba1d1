package backfill

import (
	"time"

	v1 "k8s.io/api/core/v1"

	config "github.com/kubehtc/kubehtc/apis/config/v1alpha1"
)

// walltime is the pod's declared maximum run time (see the package doc); 0 if it has none.
func walltime(pod *v1.Pod, args *config.BackfillArgs) time.Duration {
	if s := pod.Spec.ActiveDeadlineSeconds; s != nil && *s > 0 {
		return time.Duration(*s) * time.Second
	}
	if a := pod.Annotations[config.WalltimeAnnotation]; a != "" {
		if d, err := time.ParseDuration(a); err == nil && d > 0 {
			return d
		}
	}
	class := pod.Labels[args.ClassLabel]
	for _, d := range args.DefaultWalltimes {
		if (d.Namespace == "" || d.Namespace == pod.Namespace) && (d.Class == "" || d.Class == class) {
			return d.Walltime.Duration
		}
	}
	return 0
}

// expectedEnd is when a pod placed or started at start ends at the latest; zero if it has no walltime. A
// bound pod counts from its status.startTime when the kubelet has set it.
func expectedEnd(pod *v1.Pod, start time.Time, args *config.BackfillArgs) time.Time {
	w := walltime(pod, args)
	if w == 0 {
		return time.Time{}
	}
	if pod.Status.StartTime != nil {
		start = pod.Status.StartTime.Time
	}
	return start.Add(w)
}
