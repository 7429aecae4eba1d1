package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubehtc/kubehtc/internal/why"
)

func newWhyCommand() *cobra.Command {
	var kubeconfig, namespace, output string
	cmd := &cobra.Command{
		Use:   "why (pod|podgroup|gridjob) NAME | why KIND/NAME",
		Short: "Say why a pod, gang or grid job is pending and what it waits for",
		Long: `Explain, from the cluster's objects, why a pod, a gang (PodGroup) or a grid job waits: the scheduler's
last reason, its fair-share queue (share, target, usage, rank) and its place among the queue's pending
pods, its gang's state, and its reservation and expected start where the scheduler made one.`,
		Example: "  kubehtc why pod train-worker-0 -n ml\n  kubehtc why podgroup/train -n ml -o json",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, ok := strings.Cut(args[0], "/")
			if len(args) == 2 {
				kind, name, ok = args[0], args[1], true
			}
			if !ok || name == "" {
				return fmt.Errorf("want KIND NAME or KIND/NAME, got %q", strings.Join(args, " "))
			}
			loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
				&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig, Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence},
				&clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: namespace}})
			cfg, err := loader.ClientConfig()
			if err != nil {
				return err
			}
			if namespace == "" {
				if namespace, _, err = loader.Namespace(); err != nil {
					return err
				}
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			dyn, err := dynamic.NewForConfig(cfg)
			if err != nil {
				return err
			}
			a, err := why.Explain(cmd.Context(), why.Clients{Kube: cs, Dynamic: dyn}, kind, namespace, name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch output {
			case "":
				a.WriteText(out, time.Now())
			case "json":
				b, err := json.MarshalIndent(a, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(out, string(b))
			default:
				return fmt.Errorf("--output %q: want json or nothing", output)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json (default: text for a person)")
	return cmd
}
