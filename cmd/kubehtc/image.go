package main

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/kubehtc/kubehtc/snapshotter/convert"
)

func newImageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Container image tools",
	}
	var opts convert.Options
	var listPath, platform string
	conv := &cobra.Command{
		Use:   "convert SOURCE DESTINATION",
		Short: "Convert an image in a registry to eStargz (lazily pullable) and push it under a new reference",
		Long: "Reads SOURCE from its registry, converts every layer to eStargz (files of --prioritized-files " +
			"first, fetched at mount) and pushes the result as DESTINATION. Registry credentials come from " +
			"~/.docker/config.json. Layers are staged in --tmp-dir (twice the largest layer).",
		Example: "  kubehtc image convert registry.site/atlas/athena:24.0 registry.site/atlas/athena:24.0-esgz \\\n" +
			"      --prioritized-files startup.txt",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if listPath != "" {
				f, err := os.Open(listPath)
				if err != nil {
					return fmt.Errorf("opening prioritized-file list: %w", err)
				}
				opts.PrioritizedFiles, err = convert.ParseFileList(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", listPath, err)
				}
			}
			p, err := v1.ParsePlatform(platform)
			if err != nil {
				return fmt.Errorf("--platform: %w", err)
			}
			opts.Progress = cmd.ErrOrStderr()
			digest, err := convert.Image(cmd.Context(), args[0], args[1], opts,
				remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithPlatform(*p))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s\n", args[1], digest)
			return nil
		},
	}
	conv.Flags().StringVar(&listPath, "prioritized-files", "", "file listing paths read at start-up, one per line (# comments)")
	conv.Flags().IntVar(&opts.CompressionLevel, "compression-level", 6, "gzip level: 1 fastest … 9 smallest")
	conv.Flags().IntVar(&opts.ChunkSize, "chunk-size", 0, "bytes per independently fetched chunk of large files (0: 4 MiB)")
	conv.Flags().StringVar(&opts.TempDir, "tmp-dir", "", "directory for staging layers (default: $TMPDIR)")
	conv.Flags().BoolVar(&opts.Insecure, "insecure", false, "use plain HTTP to the registries")
	conv.Flags().StringVar(&platform, "platform", "linux/amd64", "platform to convert when SOURCE is a multi-platform index")
	cmd.AddCommand(conv)
	return cmd
}
