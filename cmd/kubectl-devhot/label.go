package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

// newLabelCommand is `enable` (on) or `disable`: it sets or removes the
// opt-in label, and the webhook injects or reverts at that admission.
func newLabelCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams, on bool) *cobra.Command {
	use, short := "enable DEPLOYMENT", "Label a Deployment "+annotations.DevHot+"=true: the webhook injects the fetcher"
	if !on {
		use, short = "disable DEPLOYMENT", "Remove the label: the webhook restores the original Deployment"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentName(args[0])
			if err != nil {
				return err
			}
			c, err := connect(flags)
			if err != nil {
				return err
			}
			var value any // JSON null removes the label
			if on {
				value = annotations.DevHotEnabled
			}
			patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{annotations.DevHot: value}}})
			if err != nil {
				return err
			}
			d, err := c.client.AppsV1().Deployments(c.namespace).Patch(cmd.Context(), name, types.MergePatchType, patch, metav1.PatchOptions{})
			if err != nil {
				return fmt.Errorf("deployment %s/%s: %w", c.namespace, name, err)
			}
			_, injected := d.Annotations[annotations.Injected]
			switch {
			case on && injected:
				fmt.Fprintf(streams.Out, "deployment.apps/%s enabled: the fetcher is injected; `kubectl devhot push %s DIR` to push code\n", name, name)
			case on:
				fmt.Fprintf(streams.Out, "deployment.apps/%s labelled, but the webhook did not inject the fetcher: is aether-devhot installed?\n", name)
			case injected:
				fmt.Fprintf(streams.Out, "deployment.apps/%s unlabelled, but still injected: is the webhook running?\n", name)
			default:
				fmt.Fprintf(streams.Out, "deployment.apps/%s disabled: the original Deployment is back\n", name)
			}
			return nil
		},
	}
}
