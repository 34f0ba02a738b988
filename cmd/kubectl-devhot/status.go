package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
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
			evs, err := c.client.EventsV1().Events(c.namespace).List(cmd.Context(), metav1.ListOptions{FieldSelector: refresh.EventSelector(name)})
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
				fmt.Fprintln(out, "\nPOD\tRESULT\tDIGEST\tWHEN\tMESSAGE")
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
func lastRefreshes(events []eventsv1.Event, desired string, now time.Time) []string {
	type last struct {
		rec refresh.Record
		e   eventsv1.Event
	}
	latest := map[string]last{}
	for _, e := range events {
		rec, pod, ok := refresh.FromEvent(&e)
		if !ok {
			continue
		}
		if prev, seen := latest[pod]; !seen || later(e, rec, prev.e, prev.rec, desired) {
			latest[pod] = last{rec, e}
		}
	}
	pods := slices.Sorted(maps.Keys(latest))
	rows := make([]string, 0, len(pods))
	for _, p := range pods {
		l := latest[p]
		rows = append(rows, strings.Join([]string{p, l.e.Reason, l.rec.Digest,
			duration.HumanDuration(now.Sub(eventTime(l.e))) + " ago", l.e.Note}, "\t"))
	}
	return rows
}

// stage orders the refresh markers of one digest: published, failed, then
// loaded by the app.
func stage(m refresh.Marker) int {
	return slices.Index([]refresh.Marker{refresh.MarkerOK, refresh.MarkerFail, refresh.MarkerLive}, m)
}

// later reports whether refresh Event e came after prev. Event times have
// microseconds, but a clock step or two fetchers' Events may tie: on a
// tie, an Event about the desired digest is the later (the older digest's
// came first), then the later stage.
func later(e eventsv1.Event, rec refresh.Record, prev eventsv1.Event, prevRec refresh.Record, desired string) bool {
	if t, p := eventTime(e), eventTime(prev); !t.Equal(p) {
		return t.After(p)
	}
	if d, p := rec.Digest == desired, prevRec.Digest == desired; desired != "" && d != p {
		return d
	}
	return stage(rec.Marker) > stage(prevRec.Marker)
}

func eventTime(e eventsv1.Event) time.Time {
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.DeprecatedLastTimestamp.Time
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
