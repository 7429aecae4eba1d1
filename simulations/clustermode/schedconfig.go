package clustermode

import (
	"fmt"

	"sigs.k8s.io/yaml"

	kubehtcscheduler "github.com/kubehtc/kubehtc/scheduler"
)

// BackoffSeconds is kube-scheduler's pod back-off (podInitialBackoffSeconds and podMaxBackoffSeconds) in
// cluster mode: the smallest the configuration accepts. The back-off is wall time and is not compressed: the
// defaults (1 s, doubling to 10 s) would park an unschedulable pod for up to 10×Compression seconds of
// simulated time (10 minutes at compression 60), so that pods arriving later take the capacity it waits for;
// on a real site 10 s is negligible against jobs of minutes to hours. At 1 s the distortion is at most
// Compression seconds, the same as KWOK's timing granularity.
const BackoffSeconds = 1

// SchedulerConfig is kubehtc's scheduler configuration (scheduler.Config, both profiles unchanged) with
// BackoffSeconds, for localcluster.Options.SchedulerConfig of a cluster-mode run.
func SchedulerConfig() ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(kubehtcscheduler.Config, &doc); err != nil {
		return nil, fmt.Errorf("scheduler configuration: %w", err)
	}
	doc["podInitialBackoffSeconds"] = BackoffSeconds
	doc["podMaxBackoffSeconds"] = BackoffSeconds
	return yaml.Marshal(doc)
}
