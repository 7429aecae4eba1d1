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
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newUpCommand(), newDemoCommand())
	root.AddCommand(newSnapshotterCommand(), newImageCommand())
	root.AddCommand(newSimCommand(), newVersionCommand(), newWhyCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kubehtc:", err)
		stop()
		os.Exit(1)
	}
}
