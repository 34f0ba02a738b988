package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

func TestDeploymentName(t *testing.T) {
	tests := []struct{ arg, want, wantErr string }{
		{"web", "web", ""},
		{"deploy/web", "web", ""},
		{"deployment.apps/web", "web", ""},
		{"deployments/web", "web", ""},
		{"svc/web", "", "not a Deployment"},
		{"deploy/", "", "want NAME"},
		{"deploy/a/b", "", "want NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			got, err := deploymentName(tt.arg)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("deploymentName(%q) = %q, %v; want %q, %q", tt.arg, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// refreshEvent is the Event the fetcher reports for rec on pod, made by the
// fetcher's own code (refresh.NewEvent), at t.
func refreshEvent(rec refresh.Record, pod string, t time.Time) *eventsv1.Event {
	d := corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: "ns", Name: "web"}
	p := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "ns", Name: pod}
	return refresh.NewEvent(rec, d, p, "a note for humans that nothing parses", t)
}

// TestRolloutObserve feeds the fetcher's Events to the wait of one push.
func TestRolloutObserve(t *testing.T) {
	const digest = "sha256:aaaa"
	now := time.Now()
	ok := func(pod string) *eventsv1.Event {
		return refreshEvent(refresh.Record{Marker: refresh.MarkerOK, Digest: digest, Latency: 3 * time.Millisecond}, pod, now)
	}
	live := func(pod string) *eventsv1.Event {
		return refreshEvent(refresh.Record{Marker: refresh.MarkerLive, Digest: digest, Live: 300 * time.Millisecond}, pod, now)
	}
	forged := live("p1")
	forged.ReportingController = "the-app"
	plain := live("p1")
	delete(plain.Annotations, annotations.Refresh)
	tests := []struct {
		name     string
		pods     []string
		replicas int
		events   []*eventsv1.Event
		done     bool
		wantErr  string
	}{
		{"one pod live", []string{"p1"}, 1, []*eventsv1.Event{ok("p1"), live("p1")}, true, ""},
		{"published is not live", []string{"p1"}, 1, []*eventsv1.Event{ok("p1")}, false, ""},
		{"waits for every pod", []string{"p1", "p2"}, 2, []*eventsv1.Event{live("p1")}, false, ""},
		{"another digest", []string{"p1"}, 1, []*eventsv1.Event{refreshEvent(refresh.Record{Marker: refresh.MarkerLive, Digest: "sha256:bbbb"}, "p1", now)}, false, ""},
		{"a pod that is not listed", []string{"p1"}, 1, []*eventsv1.Event{live("old-pod")}, false, ""},
		{"no pods listed: counts replicas", nil, 2, []*eventsv1.Event{live("a"), live("a"), live("b")}, true, ""},
		{"not from the fetcher", []string{"p1"}, 1, []*eventsv1.Event{forged}, false, ""},
		{"no record", []string{"p1"}, 1, []*eventsv1.Event{plain}, false, ""},
		{"failure names the reason", []string{"p1"}, 1, []*eventsv1.Event{refreshEvent(refresh.Record{Marker: refresh.MarkerFail, Digest: digest,
			Reason: refresh.ReasonChecksum, Error: "sha256 of the download is sha256:cc", Attempt: 1, RetryIn: 713 * time.Millisecond, Commit: "abc"}, "p1", now)},
			false, "pod p1: refresh failed: checksum: sha256 of the download is sha256:cc"},
		{"failure after giving up", []string{"p1"}, 1, []*eventsv1.Event{refreshEvent(refresh.Record{Marker: refresh.MarkerFail, Digest: digest,
			Reason: refresh.ReasonSizeLimit, Error: "too big", Attempt: 3, GaveUp: true}, "p1", now)},
			false, "refresh failed: size_limit: too big"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRollout(digest, time.Now(), tt.pods, tt.replicas, io.Discard)
			var done bool
			var err error
			for _, e := range tt.events {
				if done, err = r.observe(e, time.Now()); err != nil {
					break
				}
			}
			if done != tt.done || (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("done %v, error %v; want %v, %q", done, err, tt.done, tt.wantErr)
			}
			if !done && err == nil && r.stuck() == "" {
				t.Error("not done, but stuck() explains nothing")
			}
		})
	}
}

// TestLastRefreshes picks each pod's latest refresh Event for status.
func TestLastRefreshes(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 10, 0, time.UTC)
	ev := func(m refresh.Marker, pod, digest string, ms int) eventsv1.Event {
		rec := refresh.Record{Marker: m, Digest: digest}
		if m == refresh.MarkerFail {
			rec.Reason, rec.Error = refresh.ReasonChecksum, "x"
		}
		return *refreshEvent(rec, pod, now.Add(time.Duration(ms-10000)*time.Millisecond))
	}
	const a, b = "sha256:aaaa", "sha256:bbbb"
	other := ev(refresh.MarkerLive, "q", b, 9000)
	other.ReportingController, other.Reason = "kubelet", "Started"
	tests := []struct {
		name    string
		desired string
		events  []eventsv1.Event
		want    []string // "pod reason digest", one per pod
	}{
		{"loaded after published", b,
			[]eventsv1.Event{ev(refresh.MarkerLive, "p", b, 5300), ev(refresh.MarkerOK, "p", b, 5001)},
			[]string{"p RefreshLive " + b}},
		{"a tie: the desired digest wins", b,
			[]eventsv1.Event{ev(refresh.MarkerOK, "p", b, 5000), ev(refresh.MarkerLive, "p", a, 5000)},
			[]string{"p RefreshSucceeded " + b}},
		{"a tie: the later stage wins", b,
			[]eventsv1.Event{ev(refresh.MarkerFail, "p", b, 5000), ev(refresh.MarkerOK, "p", b, 5000)},
			[]string{"p RefreshFailed " + b}},
		{"a later time wins whatever the stage", a,
			[]eventsv1.Event{ev(refresh.MarkerLive, "p", a, 4000), ev(refresh.MarkerOK, "p", b, 4001)},
			[]string{"p RefreshSucceeded " + b}},
		{"one row per pod, sorted, other Events ignored", b,
			[]eventsv1.Event{other, ev(refresh.MarkerLive, "q", b, 5000), ev(refresh.MarkerLive, "p", b, 6000)},
			[]string{"p RefreshLive " + b, "q RefreshLive " + b}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The List's order must not matter: try it both ways.
			reversed := slices.Clone(tt.events)
			slices.Reverse(reversed)
			for _, events := range [][]eventsv1.Event{tt.events, reversed} {
				rows := lastRefreshes(events, tt.desired, now)
				var got []string
				for _, r := range rows {
					f := strings.Split(r, "\t")
					got = append(got, f[0]+" "+f[1]+" "+f[2])
				}
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("rows %q, want %q", got, tt.want)
				}
			}
		})
	}
}
