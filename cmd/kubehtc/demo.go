package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubehtc/kubehtc/internal/demo"
	"github.com/kubehtc/kubehtc/internal/localcluster"
)

func newDemoCommand() *cobra.Command {
	var opts demo.Options
	var nodesConfig string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a local cluster, run a mixed site workload on kubehtc-scheduler, and print a summary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			copts := localcluster.Options{NodePools: demo.NodePools(), Components: localComponents()}
			if nodesConfig != "" {
				pools, err := localcluster.LoadNodePools(nodesConfig)
				if err != nil {
					return err
				}
				copts.NodePools = pools
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "Starting the local cluster...")
			c, err := localcluster.Start(cmd.Context(), copts)
			if err != nil {
				return err
			}
			defer c.Stop()
			fmt.Fprintf(out, "Local cluster ready in %s: %d nodes (%s)\n", c.StartupDuration.Round(time.Millisecond), copts.NodePools.TotalNodes(), poolSummary(copts.NodePools))
			opts.Live = demo.IsTerminal(os.Stdout)
			if _, err := demo.Run(cmd.Context(), c.Client(), out, opts); err != nil {
				return err
			}
			return c.Stop()
		},
	}
	cmd.Flags().StringVar(&nodesConfig, "nodes-config", "", "node-pool file (YAML); default: CPU pools in 3 zones, a GPU nodegroup and the VO backlogs' pool (fairshare)")
	cmd.Flags().Float64Var(&opts.Scale.Factor, "scale", 1, "multiply the number of jobs and replicas")
	cmd.Flags().Float64Var(&opts.Scale.Runtime, "runtime-scale", 1, "multiply pod runtimes")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "give up if the workload has not drained by then")
	cmd.Flags().BoolVar(&opts.Compare, "compare", true, "first run the same workloads on the stock default-scheduler profile and compare placements")
	return cmd
}
