package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubehtc/kubehtc/simulations"
	"github.com/kubehtc/kubehtc/simulations/report"
	"github.com/kubehtc/kubehtc/simulations/scenario"
)

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
				return errors.New("--mode cluster is not available yet: use --mode fast")
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
