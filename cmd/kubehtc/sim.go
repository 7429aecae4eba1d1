package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/quotacomponent"
	"github.com/kubehtc/kubehtc/simulations"
	"github.com/kubehtc/kubehtc/simulations/clustermode"
	"github.com/kubehtc/kubehtc/simulations/fast"
	"github.com/kubehtc/kubehtc/simulations/metrics"
	"github.com/kubehtc/kubehtc/simulations/report"
	"github.com/kubehtc/kubehtc/simulations/scenario"
	"github.com/kubehtc/kubehtc/simulations/workload"
)

// clusterRunner starts a local cluster with the scenario's nodes on its first run and reuses it for the other
// profiles; stop stops it.
func clusterRunner() (simulations.Runner, func()) {
	var c *localcluster.Cluster
	run := func(ctx context.Context, s *scenario.Scenario, set *workload.Set, profile string, progress fast.Progress) (*metrics.Result, error) {
		if c == nil {
			cfg, err := clustermode.SchedulerConfig()
			if err != nil {
				return nil, err
			}
			if c, err = localcluster.Start(ctx, localcluster.Options{NodePools: set.Pools, SchedulerConfig: cfg, Components: []localcluster.Component{quotacomponent.Component()}}); err != nil {
				return nil, fmt.Errorf("starting the local cluster: %w", err)
			}
		}
		return clustermode.Run(ctx, c, set, clustermode.Options{Profile: profile, Compression: s.Compression,
			Duration: s.DurationOrZero(), Queues: s.Queues, Targets: simulations.Targets(s),
			HalfLife: s.HalfLife(), AccountingInterval: s.AccountingInterval(), Progress: progress})
	}
	return run, func() {
		if c != nil {
			_ = c.Stop()
		}
	}
}

func newSimCommand() *cobra.Command {
	var (
		mode, out string
		check     bool
	)
	cmd := &cobra.Command{
		Use:   "sim <scenario.yaml>",
		Short: "Replay a scenario on each scheduler profile and write a report (results.json, report.md, plots)",
		Long: `sim replays a scenario (a trace or a generated site day on a simulated cluster) once per scheduler
profile on identical input and writes a report folder. --mode fast runs in virtual time through the real
scheduling framework without an API server; --mode cluster runs on the local cluster. With --check, the run
fails when a metric leaves the range file beside the scenario (ranges.yaml, or <scenario>.ranges.yaml).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := scenario.Load(args[0])
			if err != nil {
				return err
			}
			var runner simulations.Runner
			switch mode {
			case simulations.ModeFast:
				runner = simulations.FastRunner
			case simulations.ModeCluster:
				var stop func()
				runner, stop = clusterRunner()
				defer stop()
			default:
				return fmt.Errorf("--mode: %q is not fast or cluster", mode)
			}
			if out == "" {
				out = filepath.Join("sim-reports", s.Name+"-"+mode)
			}
			res, err := simulations.Run(cmd.Context(), s, mode, runner, os.Stderr)
			if err != nil {
				return err
			}
			var failures []error
			if check {
				path := rangesPath(args[0])
				r, err := scenario.LoadRanges(path)
				if err != nil {
					return fmt.Errorf("--check: %w", err)
				}
				failures = r.Check(res.Flat())
			}
			if err := report.Write(out, res, check, failures); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", filepath.Join(out, "report.md"))
			if len(failures) > 0 {
				for _, f := range failures {
					fmt.Fprintln(cmd.ErrOrStderr(), "out of range:", f)
				}
				return fmt.Errorf("%d metrics out of range", len(failures))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mode, "mode", simulations.ModeFast, "fast (virtual time, no API server) or cluster (local cluster)")
	cmd.Flags().StringVar(&out, "out", "", "report folder (default sim-reports/<scenario>-<mode>)")
	cmd.Flags().BoolVar(&check, "check", false, "fail when a metric leaves the scenario's range file")
	return cmd
}

// rangesPath is <dir>/<name>.ranges.yaml when it exists, else <dir>/ranges.yaml.
func rangesPath(scenarioPath string) string {
	dir := filepath.Dir(scenarioPath)
	specific := filepath.Join(dir, strings.TrimSuffix(filepath.Base(scenarioPath), filepath.Ext(scenarioPath))+".ranges.yaml")
	if _, err := os.Stat(specific); err == nil {
		return specific
	}
	return filepath.Join(dir, "ranges.yaml")
}
