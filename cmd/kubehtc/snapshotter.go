package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kubehtc/kubehtc/snapshotter"
)

func newSnapshotterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshotter",
		Short: "Lazy image pulling on nodes (kubehtc-snapshotter)",
	}
	var sitePath, version, only string
	config := &cobra.Command{
		Use:   "config",
		Short: "Print the node files for lazy pulling: the containerd fragment and kubehtc-snapshotter's config",
		Long: "Renders, from one site configuration (YAML, see docs/snapshotter.md), the containerd config fragment " +
			"(proxy plugin, CRI snapshotter, remote-snapshot annotations) for containerd 1.6/1.7 or 2.x and " +
			"kubehtc-snapshotter's TOML configuration. Without --site the defaults are used.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var data []byte
			if sitePath != "" {
				var err error
				if data, err = os.ReadFile(sitePath); err != nil {
					return fmt.Errorf("reading site config: %w", err)
				}
			}
			site, err := snapshotter.ParseSite(data)
			if err != nil {
				return err
			}
			v, err := snapshotter.ParseContainerdVersion(version)
			if err != nil {
				return err
			}
			files, err := snapshotter.NodeFiles(site, v)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for i, f := range files {
				switch {
				case only == "containerd" && i == 0, only == "snapshotter" && i == 1:
					fmt.Fprint(out, f.Content)
				case only == "":
					fmt.Fprintf(out, "# ---- %s\n%s\n", f.Path, f.Content)
				}
			}
			if only != "" && only != "containerd" && only != "snapshotter" {
				return fmt.Errorf("--only %q: want containerd or snapshotter", only)
			}
			return nil
		},
	}
	config.Flags().StringVar(&sitePath, "site", "", "site configuration (YAML); default: all defaults")
	config.Flags().StringVar(&version, "containerd", "1.7", "containerd release on the nodes: 1.6, 1.7 or 2.x")
	config.Flags().StringVar(&only, "only", "", "print only one file, without its header: containerd or snapshotter")
	cmd.AddCommand(config)
	return cmd
}
