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
	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// release is one digest as the fetchers' refresh Events tell of it.
type release struct {
	digest string
	// first is the first Event about it; commit is the build annotation
	// the fetchers carried for it.
	first  time.Time
	commit string
	// pods is each pod's latest record about it.
	pods map[string]refresh.Record
	// onDisk lists the pods that still keep it (sidecar.KeepReleases per
	// pod: the newest published, by the Events).
	onDisk []string
}

// live reports whether the release went live on some pod and was not
// failed there since.
func (r release) live() bool {
	for _, rec := range r.pods {
		if rec.Marker == refresh.MarkerLive {
			return true
		}
	}
	return false
}

// releases folds the refresh Events into one release per digest, newest
// first.
func releases(events []eventsv1.Event) []release {
	type item struct {
		rec refresh.Record
		pod string
		at  time.Time
	}
	var items []item
	for _, e := range events {
		if rec, pod, ok := refresh.FromEvent(&e); ok {
			items = append(items, item{rec, pod, eventTime(e)})
		}
	}
	slices.SortStableFunc(items, func(a, b item) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return stage(a.rec.Marker) - stage(b.rec.Marker)
	})
	byDigest := map[string]*release{}
	published := map[string][]string{} // pod -> digests published, oldest first
	for _, it := range items {
		r := byDigest[it.rec.Digest]
		if r == nil {
			r = &release{digest: it.rec.Digest, first: it.at, pods: map[string]refresh.Record{}}
			byDigest[it.rec.Digest] = r
		}
		if it.rec.Commit != "" {
			r.commit = it.rec.Commit
		}
		r.pods[it.pod] = it.rec
		if it.rec.Marker == refresh.MarkerOK {
			published[it.pod] = append(slices.DeleteFunc(published[it.pod], func(d string) bool { return d == it.rec.Digest }), it.rec.Digest)
		}
	}
	for pod, ds := range published {
		for _, d := range ds[max(0, len(ds)-sidecar.KeepReleases):] {
			byDigest[d].onDisk = append(byDigest[d].onDisk, pod)
		}
	}
	out := make([]release, 0, len(byDigest))
	for _, r := range byDigest {
		slices.Sort(r.onDisk)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b release) int { return b.first.Compare(a.first) })
	return out
}

// outcome says what a record left the pod with.
func outcome(rec refresh.Record) string {
	switch rec.Marker {
	case refresh.MarkerOK:
		return "published"
	case refresh.MarkerLive:
		return "live"
	case refresh.MarkerInstall:
		return "installing"
	}
	if rec.RolledBackTo != "" {
		return string(rec.Reason) + ", rolled back"
	}
	return string(rec.Reason)
}

func newHistoryCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	limit := 10
	cmd := &cobra.Command{
		Use:   "history DEPLOYMENT",
		Short: "List the releases pushed to a Deployment, newest first: when, their commit, and what each pod made of them",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, d, evs, err := targetEvents(cmd.Context(), flags, args[0])
			if err != nil {
				return err
			}
			name := d.Name
			rs := releases(evs)
			if len(rs) == 0 {
				fmt.Fprintf(streams.Out, "deployment.apps/%s: no release reported yet\n", name)
				return nil
			}
			w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DIGEST\tFIRST SEEN\tCOMMIT\tKEPT ON\tPODS")
			now := time.Now()
			for _, r := range rs[:min(limit, len(rs))] {
				digest := r.digest
				if digest == d.Annotations[annotations.Digest] {
					digest += " (desired)"
				}
				var pods []string
				for _, p := range slices.Sorted(maps.Keys(r.pods)) {
					pods = append(pods, p+" "+outcome(r.pods[p]))
				}
				fmt.Fprintf(w, "%s\t%s ago\t%s\t%d pods\t%s\n", digest, duration.HumanDuration(now.Sub(r.first)), orDash(r.commit), len(r.onDisk), strings.Join(pods, ", "))
			}
			return w.Flush()
		},
	}
	cmd.Flags().Var(bounds.IntFlag[int]{P: &limit, Range: historyLimitRange}, "limit", "how many releases to list ("+historyLimitRange.String()+")")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
