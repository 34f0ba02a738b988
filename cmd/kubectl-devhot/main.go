// Command kubectl-devhot is the kubectl plugin of aether-devhot: `kubectl
// devhot push` packs a directory, uploads it to the artifact store,
// annotates the Deployment and waits until every pod runs the new code.
// It uses kubectl's own flags (--kubeconfig, --context, -n and the rest).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:           "kubectl-devhot",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl devhot"},
		Short:         "Push Node.js code into running pods of a dev-hot Deployment",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	flags.AddFlags(root.PersistentFlags())
	root.AddCommand(
		newPushCommand(flags, streams),
		newStatusCommand(flags, streams),
		newHistoryCommand(flags, streams),
		newRollbackCommand(flags, streams),
		newLogsCommand(flags, streams),
		newLabelCommand(flags, streams, true),
		newLabelCommand(flags, streams, false),
	)
	return root
}
