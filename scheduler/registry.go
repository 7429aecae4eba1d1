package scheduler

import (
	_ "embed"

	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/kubehtc/kubehtc/scheduler/backfill"
	"github.com/kubehtc/kubehtc/scheduler/fairshare"
	"github.com/kubehtc/kubehtc/scheduler/gang"
	"github.com/kubehtc/kubehtc/scheduler/packspread"
	"github.com/kubehtc/kubehtc/scheduler/queueorder"
)

// ProfileName is the schedulerName of kubehtc's profile. Pods opt in with spec.schedulerName: kubehtc; the
// configuration also keeps the stock default-scheduler profile so both can be compared in one process.
const ProfileName = "kubehtc"

// Config is the KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) that defines the kubehtc
// profile. The local cluster runs exactly this file, adding only its client connection.
//
//go:embed kubehtc-scheduler-config.yaml
var Config []byte

// Registry returns kubehtc's out-of-tree plugins as kube-scheduler options, for app.NewSchedulerCommand or
// app.Setup. Plugins are added here as they land; the profile in Config enables them.
func Registry() []app.Option {
	return []app.Option{
		app.WithPlugin(packspread.Name, packspread.New),
		app.WithPlugin(queueorder.Name, queueorder.New),
		app.WithPlugin(gang.Name, gang.New),
		app.WithPlugin(fairshare.Name, fairshare.New),
		app.WithPlugin(backfill.Name, backfill.New),
	}
}
