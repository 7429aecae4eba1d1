package localcluster

import (
	"context"
	"fmt"
	"os"

	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	"sigs.k8s.io/yaml"

	kubehtcscheduler "github.com/kubehtc/kubehtc/scheduler"
)

// writeSchedulerConfig writes config (a KubeSchedulerConfiguration) to path with its clientConnection set to
// the local cluster's kubeconfig and the given client rate limits.
func writeSchedulerConfig(path string, config []byte, kubeconfig string, qps float32, burst int) error {
	var doc map[string]any
	if err := yaml.Unmarshal(config, &doc); err != nil {
		return fmt.Errorf("scheduler configuration: %w", err)
	}
	doc["clientConnection"] = map[string]any{"kubeconfig": kubeconfig, "qps": qps, "burst": burst}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

// startScheduler runs kubehtc-scheduler (kube-scheduler's app with kubehtc's registry) from a configuration
// file until ctx is cancelled. Pitfall 5 of ARCHITECTURE.md: app.Setup overwrites ComponentConfig, so the
// configuration goes in as a file; the secure port is off.
func startScheduler(ctx context.Context, configFile string) (done chan error, err error) {
	opts := scheduleroptions.NewOptions()
	opts.ConfigFile = configFile
	opts.SecureServing.BindPort = 0
	cc, sched, err := app.Setup(ctx, opts, kubehtcscheduler.Registry()...)
	if err != nil {
		return nil, fmt.Errorf("kubehtc-scheduler setup: %w", err)
	}
	done = make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cc, sched)
		close(done)
	}()
	return done, nil
}
