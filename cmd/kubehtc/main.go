// Command kubehtc is the kubehtc CLI: a local cluster (up), the demonstration (demo), why a job waits (why).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubehtc/kubehtc/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "kubehtc",
		Short:         "kubehtc: batch and grid computing on Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version: the embedded Kubernetes components register a global --version flag (component-base's
		// verflag, not a bool), which cobra merges into the root's flags, so cobra's own version flag cannot be
		// used; the root answers it with kubehtc's version instead.
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f := cmd.Flags().Lookup("version"); f != nil && f.Changed && f.Value.String() != "false" {
				fmt.Fprintln(cmd.OutOrStdout(), version.Get().String())
				return nil
			}
			return cmd.Help()
		},
		Args: cobra.NoArgs,
	}
	root.AddCommand(newUpCommand(), newDemoCommand())
	root.AddCommand(newSnapshotterCommand(), newImageCommand())
	root.AddCommand(newSimCommand(), newVersionCommand(), newWhyCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kubehtc:", err)
		stop()
		os.Exit(1)
	}
}
