package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubehtc/kubehtc/internal/localcluster"
)

func newUpCommand() *cobra.Command {
	var nodesConfig, dir string
	var verbosity, realNodes int
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a local Kubernetes cluster (etcd, apiserver, controllers, kubehtc-scheduler, KWOK nodes) until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := localcluster.Options{Dir: dir, Verbosity: verbosity, NodePools: localcluster.DefaultNodePools(), Components: localComponents(), RealNodes: realNodes}
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
Simulated pods run for the duration in annotation %s (e.g. "90s"), then succeed; with
annotation %s they end with that code. Without a runtime they run until deleted.
Component logs: %s
Press Ctrl-C to stop.
`, c.StartupDuration.Round(time.Millisecond), opts.NodePools.TotalNodes(), poolSummary(opts.NodePools), c.Kubeconfig,
				localcluster.RuntimeAnnotation, localcluster.ExitCodeAnnotation, logPath(c))
			<-cmd.Context().Done()
			fmt.Fprintln(out, "\nStopping...")
			return c.Stop()
		},
	}
	cmd.Flags().StringVar(&nodesConfig, "nodes-config", "", "node-pool file (YAML); default: CPU pools in 3 zones + a GPU nodegroup")
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the cluster's data and kubeconfig (kept); default: a temporary directory, removed on exit")
	cmd.Flags().IntVar(&realNodes, "real-nodes", 0, "real worker nodes (kubelet + containerd; root, see docs/local-cluster.md) next to the simulated ones, labelled kubehtc.io/node-kind=real")
	cmd.Flags().IntVarP(&verbosity, "v", "v", 0, "log verbosity of the components (their log goes to cluster.log in the cluster directory)")
	return cmd
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
