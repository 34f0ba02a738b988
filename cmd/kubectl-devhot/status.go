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
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

func newStatusCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "status DEPLOYMENT",
		Short: "Show the desired digest and, per pod, the release it runs and its last failure, from the Deployment and its Events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, d, evs, err := targetEvents(cmd.Context(), flags, args[0])
			if err != nil {
				return err
			}
			name := d.Name
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
			pods := podStatuses(evs, a[annotations.Digest])
			if len(pods) == 0 {
				fmt.Fprintln(out, "pods\tno refresh reported yet")
				return out.Flush()
			}
			now := time.Now()
			fmt.Fprintln(out, "\nPOD\tSTATE\tLIVE\tSINCE\tLAST FAILURE")
			for _, p := range pods {
				fmt.Fprintln(out, p.row(now))
			}
			if err := out.Flush(); err != nil {
				return err
			}
			for _, p := range pods {
				if p.failure != nil {
					fmt.Fprintf(streams.Out, "\n%s: %s on %s, %s ago:\n%s", p.pod, p.failure.Reason, p.failure.Digest,
						duration.HumanDuration(now.Sub(p.failedAt)), indent(p.failure.Error))
				}
			}
			return nil
		},
	}
}

// podStatus is what one pod's refresh Events say: what it runs, how far
// its latest refresh got, and its last failure.
type podStatus struct {
	pod string
	// live is what the pod runs: a digest, refresh.ImageCode after a
	// rollback to the image's own code, "" when no Event says.
	live    string
	liveAt  time.Time
	latest  refresh.Record
	failure *refresh.Record
	// failedAt is when failure was reported.
	failedAt time.Time
}

// podStatuses folds the refresh Events, in order, into one status per
// pod, sorted by pod; desired is the Deployment's digest (see later).
func podStatuses(events []eventsv1.Event, desired string) []podStatus {
	type item struct {
		rec refresh.Record
		e   eventsv1.Event
	}
	byPod := map[string][]item{}
	for _, e := range events {
		if rec, pod, ok := refresh.FromEvent(&e); ok {
			byPod[pod] = append(byPod[pod], item{rec, e})
		}
	}
	out := make([]podStatus, 0, len(byPod))
	for _, pod := range slices.Sorted(maps.Keys(byPod)) {
		items := byPod[pod]
		slices.SortStableFunc(items, func(a, b item) int {
			switch {
			case later(b.e, b.rec, a.e, a.rec, desired):
				return -1
			case later(a.e, a.rec, b.e, b.rec, desired):
				return 1
			}
			return 0
		})
		st := podStatus{pod: pod}
		for _, it := range items {
			at := eventTime(it.e)
			st.latest = it.rec
			switch it.rec.Marker {
			case refresh.MarkerLive:
				st.live, st.liveAt = it.rec.Digest, at
			case refresh.MarkerFail:
				st.failure, st.failedAt = &it.rec, at
				if it.rec.RolledBackTo != "" {
					st.live, st.liveAt = it.rec.RolledBackTo, at
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// row is the pod's line of the status table.
func (p podStatus) row(now time.Time) string {
	state := "live"
	switch {
	case p.latest.Marker == refresh.MarkerOK:
		state = "loading " + shortDigest(p.latest.Digest)
	case p.latest.Marker == refresh.MarkerInstall:
		state = "installing " + shortDigest(p.latest.Digest)
	case p.latest.Marker == refresh.MarkerFail && p.latest.Reason == refresh.ReasonAppDown:
		state = "down"
	case p.latest.Marker == refresh.MarkerFail && p.latest.RolledBackTo != "":
		state = "rolled back"
	case p.latest.Marker == refresh.MarkerFail:
		state = "failed"
	}
	live, since := "<unknown>", "-"
	if p.live != "" {
		live, since = shortDigest(p.live), duration.HumanDuration(now.Sub(p.liveAt))+" ago"
	}
	failure := "<none>"
	if f := p.failure; f != nil {
		failure = fmt.Sprintf("%s on %s, %s ago", f.Reason, shortDigest(f.Digest), duration.HumanDuration(now.Sub(p.failedAt)))
		if f.RolledBackTo != "" {
			failure += ", rolled back to " + shortDigest(f.RolledBackTo)
		}
	}
	return strings.Join([]string{p.pod, state, live, since, failure}, "\t")
}

// shortDigest keeps a digest's first 12 hex digits, as docker shows image
// IDs; the image's own code is named so.
func shortDigest(d string) string {
	if d == refresh.ImageCode {
		return "the image's code"
	}
	if hex, ok := strings.CutPrefix(d, "sha256:"); ok && len(hex) > 12 {
		return "sha256:" + hex[:12]
	}
	return d
}

// indent indents each line of text by four spaces.
func indent(text string) string {
	var b strings.Builder
	for line := range strings.Lines(strings.TrimRight(text, "\n") + "\n") {
		b.WriteString("    " + line)
	}
	return b.String()
}

// stage orders the refresh markers of one digest: published, installing
// its dependencies, failed, then loaded by the app.
func stage(m refresh.Marker) int {
	return slices.Index([]refresh.Marker{refresh.MarkerOK, refresh.MarkerInstall, refresh.MarkerFail, refresh.MarkerLive}, m)
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
