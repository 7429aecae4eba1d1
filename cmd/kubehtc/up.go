package main

import (
	"fmt"
	"maps"
	"time"

	"github.com/spf13/cobra"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/kubehtc/kubehtc/internal/localcluster"
)

// upFeatureGates are the Kubernetes feature gates `kubehtc up` turns on unless --feature-gates says otherwise.
// GenericWorkload serves the upstream gang API (scheduling.k8s.io/v1beta1 Workload and PodGroup) beside
// kubehtc's scheduling.x-k8s.io PodGroup; both are scheduled all-or-nothing (docs/scheduler.md).
var upFeatureGates = map[string]bool{"GenericWorkload": true}

func newUpCommand() *cobra.Command {
	var nodesConfig, dir string
	var verbosity, realNodes int
	var gates map[string]bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a local Kubernetes cluster (etcd, apiserver, controllers, kubehtc-scheduler, KWOK nodes) until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := localcluster.Options{Dir: dir, Verbosity: verbosity, NodePools: localcluster.DefaultNodePools(), Components: localComponents(),
				FeatureGates: mergeGates(upFeatureGates, gates), RealNodes: realNodes}
			if nodesConfig != "" {
				pools, err := localcluster.LoadNodePools(nodesConfig)
				if err != nil {
					return err
				}
				opts.NodePools = pools
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "Starting the local cluster...")
			c, err := localcluster.Start(cmd.Context(), opts)
			if err != nil {
				return err
			}
			defer c.Stop()
			if rn := c.RealNodes(); rn != nil {
				fmt.Fprintf(out, "Real nodes (label kubehtc.io/node-kind=real): %d, images from %s (busybox: %s)\n", len(rn.Nodes), rn.Registry, rn.BusyboxImage)
			}
			fmt.Fprintf(out, `Local cluster ready in %s: %d nodes (%s).

  export KUBECONFIG=%s
  kubectl get nodes -L kubehtc.io/pool,topology.kubernetes.io/zone
  kubectl apply -f job.yaml

Pods with spec.schedulerName: kubehtc use the kubehtc profile; others the stock default-scheduler.
Feature gates: %s. Why is a pod pending? kubehtc why pod NAME -n NAMESPACE
Simulated pods run for the duration in annotation %s (e.g. "90s"), then succeed; with
annotation %s they end with that code. Without a runtime they run until deleted.
Component logs: %s
Press Ctrl-C to stop.
`, c.StartupDuration.Round(time.Millisecond), opts.NodePools.TotalNodes(), poolSummary(opts.NodePools), c.Kubeconfig,
				cliflag.NewMapStringBool(&opts.FeatureGates).String(),
				localcluster.RuntimeAnnotation, localcluster.ExitCodeAnnotation, logPath(c))
			<-cmd.Context().Done()
			fmt.Fprintln(out, "\nStopping...")
			return c.Stop()
		},
	}
	cmd.Flags().StringVar(&nodesConfig, "nodes-config", "", "node-pool file (YAML); default: CPU pools in 3 zones + a GPU nodegroup")
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the cluster's data and kubeconfig (kept); default: a temporary directory, removed on exit")
	cmd.Flags().Var(cliflag.NewMapStringBool(&gates), "feature-gates", "Kubernetes feature gates for every component, as kube-apiserver takes them (A=true,B=false); "+
		"on top of kubehtc up's defaults ("+cliflag.NewMapStringBool(&upFeatureGates).String()+")")
	cmd.Flags().IntVar(&realNodes, "real-nodes", 0, "real worker nodes (kubelet + containerd; root, see docs/local-cluster.md) next to the simulated ones, labelled kubehtc.io/node-kind=real")
	cmd.Flags().IntVarP(&verbosity, "v", "v", 0, "log verbosity of the components (their log goes to cluster.log in the cluster directory)")
	return cmd
}

// mergeGates returns defaults overridden by set.
func mergeGates(defaults, set map[string]bool) map[string]bool {
	out := maps.Clone(defaults)
	maps.Copy(out, set)
	return out
}

func poolSummary(cfg localcluster.NodePoolsConfig) string {
	s := ""
	for i, p := range cfg.Pools {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s: %dx %s cpu/%s", p.Name, p.Count, p.CPU, p.Memory)
		if p.GPUs > 0 {
			s += fmt.Sprintf("/%d gpu", p.GPUs)
		}
	}
	return s
}

func logPath(c *localcluster.Cluster) string { return c.Dir + "/cluster.log" }
