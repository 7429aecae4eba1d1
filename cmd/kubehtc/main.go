// Command kubehtc is the kubehtc CLI: a local cluster (up), the demonstration (demo).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "kubehtc",
		Short:         "kubehtc: batch and grid computing on Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUpCommand(), newDemoCommand())
	root.AddCommand(newSnapshotterCommand(), newImageCommand())
	root.AddCommand(newSimCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kubehtc:", err)
		stop()
		os.Exit(1)
	}
}
