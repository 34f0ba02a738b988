package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/fetcher"
)

func newStatusCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "status DEPLOYMENT",
		Short: "Show the desired digest and each pod's last refresh, from the Deployment and its Events",
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
			d, err := c.deployment(cmd.Context(), name)
			if err != nil {
				return err
			}
			evs, err := c.client.CoreV1().Events(c.namespace).List(cmd.Context(), metav1.ListOptions{FieldSelector: eventSelector(name)})
			if err != nil {
				return fmt.Errorf("list events: %w", err)
			}
			_, injected := d.Annotations[annotations.Injected]
			a := d.Annotations
			out := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(out, "deployment.apps/%s\tnamespace %s\n", name, c.namespace)
			fmt.Fprintf(out, "labelled\t%s\n", yesNo(d.Labels[annotations.DevHot] == annotations.DevHotEnabled))
			fmt.Fprintf(out, "injected\t%s\n", yesNo(injected))
			fmt.Fprintf(out, "digest\t%s\n", orNone(a[annotations.Digest]))
			fmt.Fprintf(out, "artifact\t%s\n", orNone(a[annotations.ArtifactURL]))
			fmt.Fprintf(out, "commit\t%s\n", orNone(a[annotations.CommitSHA]))
			fmt.Fprintf(out, "built\t%s\n", orNone(a[annotations.BuildTimestamp]))
			rows := lastRefreshes(evs.Items, a[annotations.Digest], time.Now())
			if len(rows) == 0 {
				fmt.Fprintln(out, "pods\tno refresh reported yet")
			} else {
				fmt.Fprintln(out, "\nPOD\tRESULT\tWHEN\tMESSAGE")
				for _, r := range rows {
					fmt.Fprintln(out, r)
				}
			}
			return out.Flush()
		},
	}
}

// lastRefreshes gives one row per pod: its latest refresh Event, where
// desired is the Deployment's digest (see later).
func lastRefreshes(events []corev1.Event, desired string, now time.Time) []string {
	last := map[string]corev1.Event{}
	for _, e := range events {
		if stage(e.Reason) < 0 {
			continue
		}
		pod := e.Source.Host
		if prev, ok := last[pod]; !ok || later(e, prev, desired) {
			last[pod] = e
		}
	}
	pods := make([]string, 0, len(last))
	for p := range last {
		pods = append(pods, p)
	}
	slices.Sort(pods)
	rows := make([]string, 0, len(pods))
	for _, p := range pods {
		e := last[p]
		rows = append(rows, strings.Join([]string{p, e.Reason, duration.HumanDuration(now.Sub(eventTime(e))) + " ago", e.Message}, "\t"))
	}
	return rows
}

// stage orders the refresh Events of one digest: published, failed, then
// loaded by the app; -1 for any other reason.
func stage(reason string) int {
	return slices.Index([]string{fetcher.EventRefreshSucceeded, fetcher.EventRefreshFailed, fetcher.EventRefreshLive}, reason)
}

// later reports whether refresh Event e came after prev. Event times have
// whole seconds, and a fetcher publishes, and the app loads, within one
// second: on a tie, an Event about the desired digest is the later (the
// older digest's came first), then the later stage.
func later(e, prev corev1.Event, desired string) bool {
	if t, p := eventTime(e), eventTime(prev); !t.Equal(p) {
		return t.After(p)
	}
	if d, p := strings.Contains(e.Message, desired), strings.Contains(prev.Message, desired); desired != "" && d != p {
		return d
	}
	return stage(e.Reason) > stage(prev.Reason)
}

func eventTime(e corev1.Event) time.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp.Time
	}
	return e.EventTime.Time
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
