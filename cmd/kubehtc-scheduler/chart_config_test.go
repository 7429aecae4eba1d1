package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	"sigs.k8s.io/yaml"

	"github.com/kubehtc/kubehtc/deploy/deploytest"
	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/scheduler"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m, localcluster.Options{}, &cluster)) }

// TestChartConfiguration renders the Helm chart's scheduler ConfigMap and builds a scheduler from it with
// kube-scheduler's own Setup (options, config file loading, validation, profiles and every plugin's New with
// its args), exactly as the binary does before it starts serving. The plugins check the API server for the
// CRDs they watch, so the scheduler is pointed at the local cluster: the one change to the rendered file is
// clientConnection.kubeconfig (in a Pod the in-cluster configuration applies).
func TestChartConfiguration(t *testing.T) {
	c := clustertest.Require(t, cluster)
	type summary struct {
		Profiles                  []string
		LeaderElect               bool
		LeaseNamespace, LeaseName string
	}
	cases := []struct {
		name string
		set  string
		want summary
	}{{
		name: "second scheduler: only the kubehtc profile, its own lease",
		set:  "scheduler.mode=secondary",
		want: summary{Profiles: []string{"kubehtc"}, LeaderElect: true, LeaseNamespace: deploytest.Namespace, LeaseName: "kubehtc-scheduler"},
	}, {
		name: "default-scheduler replacement: both profiles, the kube-scheduler lease",
		set:  "scheduler.mode=replace",
		want: summary{Profiles: []string{"default-scheduler", "kubehtc"}, LeaderElect: true, LeaseNamespace: "kube-system", LeaseName: "kube-scheduler"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := deploytest.RenderChart("--set", tc.set)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := deploytest.Decode(out)
			if err != nil {
				t.Fatal(err)
			}
			data, err := deploytest.ConfigMapData(objs, "kubehtc-scheduler-config", "config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var cfg map[string]any
			if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
				t.Fatalf("the rendered configuration is not YAML: %v", err)
			}
			cfg["clientConnection"] = map[string]any{"kubeconfig": c.Kubeconfig}
			withClient, err := yaml.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(file, withClient, 0o644); err != nil {
				t.Fatal(err)
			}
			opts := options.NewOptions()
			opts.ConfigFile = file
			opts.SecureServing.BindPort = 0 // nothing is served: the scheduler is built, not run
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cc, sched, err := app.Setup(ctx, opts, scheduler.Registry()...)
			if err != nil {
				t.Fatalf("kubehtc-scheduler would not start with the chart's configuration: %v\n%s", err, data)
			}
			le := cc.ComponentConfig.LeaderElection
			got := summary{LeaderElect: le.LeaderElect, LeaseNamespace: le.ResourceNamespace, LeaseName: le.ResourceName}
			for name := range sched.Profiles {
				got.Profiles = append(got.Profiles, name)
			}
			slices.Sort(got.Profiles)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("scheduler built from the chart (-want,+got):\n%s", d)
			}
		})
	}
}
