// Command kubehtc-scheduler is kube-scheduler with kubehtc's plugins registered. Run it with
// --config pointing at a KubeSchedulerConfiguration such as scheduler/kubehtc-scheduler-config.yaml.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/kubehtc/kubehtc/scheduler"
)

func main() {
	command := app.NewSchedulerCommand(scheduler.Registry()...)
	command.Use = "kubehtc-scheduler"
	os.Exit(cli.Run(command))
}
