package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/pkg/sidecar/fetcher"
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

// TestRolloutObserve feeds the fetcher's Events, in its message formats
// (pkg/sidecar/fetcher/report.go), to the wait of one push.
func TestRolloutObserve(t *testing.T) {
	const digest = "sha256:aaaa"
	ev := func(reason, pod, msg string) *corev1.Event {
		return &corev1.Event{Reason: reason, Message: msg, Source: corev1.EventSource{Host: pod}}
	}
	ok := func(pod string) *corev1.Event {
		return ev(fetcher.EventRefreshSucceeded, pod, "Published "+digest+" on pod "+pod+" in 3ms")
	}
	live := func(pod string) *corev1.Event {
		return ev(fetcher.EventRefreshLive, pod, "Loaded "+digest+" on pod "+pod+" in 300ms")
	}
	tests := []struct {
		name     string
		pods     []string
		replicas int
		events   []*corev1.Event
		done     bool
		wantErr  string
	}{
		{"one pod live", []string{"p1"}, 1, []*corev1.Event{ok("p1"), live("p1")}, true, ""},
		{"published is not live", []string{"p1"}, 1, []*corev1.Event{ok("p1")}, false, ""},
		{"waits for every pod", []string{"p1", "p2"}, 2, []*corev1.Event{live("p1")}, false, ""},
		{"another digest", []string{"p1"}, 1, []*corev1.Event{ev(fetcher.EventRefreshLive, "p1", "Loaded sha256:bbbb on pod p1 in 1ms")}, false, ""},
		{"a pod that is not listed", []string{"p1"}, 1, []*corev1.Event{live("old-pod")}, false, ""},
		{"no pods listed: counts replicas", nil, 2, []*corev1.Event{live("a"), live("a"), live("b")}, true, ""},
		{"pod from the message", nil, 1, []*corev1.Event{ev(fetcher.EventRefreshLive, "", "Loaded "+digest+" on pod x in 1ms")}, true, ""},
		{"failure names the reason", []string{"p1"}, 1, []*corev1.Event{ev(fetcher.EventRefreshFailed, "p1",
			"Refresh to "+digest+" failed on pod p1 (attempt 1, retry in 713ms): checksum: sha256 of the download is sha256:cc (aether.dev/commit-sha abc)")},
			false, "pod p1: refresh failed: checksum: sha256 of the download is sha256:cc"},
		{"failure after giving up", []string{"p1"}, 1, []*corev1.Event{ev(fetcher.EventRefreshFailed, "p1",
			"Refresh to "+digest+" failed on pod p1 (attempt 3, no retry until the digest or artifact URL changes): size_limit: too big")},
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
// Event times have whole seconds (LastTimestamp), and a release is
// published and loaded within one, so ties are the common case.
func TestLastRefreshes(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 10, 0, time.UTC)
	ev := func(reason, pod, digest string, sec int) corev1.Event {
		return corev1.Event{
			Reason: reason, Message: reason + " " + digest + " on pod " + pod,
			Source:        corev1.EventSource{Host: pod},
			LastTimestamp: metav1.NewTime(now.Add(time.Duration(sec-10) * time.Second)),
		}
	}
	const a, b = "sha256:aaaa", "sha256:bbbb"
	tests := []struct {
		name    string
		desired string
		events  []corev1.Event
		want    []string // "pod reason digest", one per pod
	}{
		{"loaded after published in the same second", b,
			[]corev1.Event{ev(fetcher.EventRefreshLive, "p", b, 5), ev(fetcher.EventRefreshSucceeded, "p", b, 5)},
			[]string{"p RefreshLive " + b}},
		{"the desired digest published in the second the old one loaded", b,
			[]corev1.Event{ev(fetcher.EventRefreshSucceeded, "p", b, 5), ev(fetcher.EventRefreshLive, "p", a, 5)},
			[]string{"p RefreshSucceeded " + b}},
		{"the desired digest failed in the second the old one loaded", b,
			[]corev1.Event{ev(fetcher.EventRefreshFailed, "p", b, 5), ev(fetcher.EventRefreshLive, "p", a, 5)},
			[]string{"p RefreshFailed " + b}},
		{"a later second wins whatever the stage", a,
			[]corev1.Event{ev(fetcher.EventRefreshLive, "p", a, 4), ev(fetcher.EventRefreshSucceeded, "p", b, 5)},
			[]string{"p RefreshSucceeded " + b}},
		{"one row per pod, sorted, other reasons ignored", b,
			[]corev1.Event{ev("Started", "q", b, 9), ev(fetcher.EventRefreshLive, "q", b, 5), ev(fetcher.EventRefreshLive, "p", b, 6)},
			[]string{"p RefreshLive " + b, "q RefreshLive " + b}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The List's order must not matter: try it both ways.
			reversed := slices.Clone(tt.events)
			slices.Reverse(reversed)
			for _, events := range [][]corev1.Event{tt.events, reversed} {
				rows := lastRefreshes(events, tt.desired, now)
				var got []string
				for _, r := range rows {
					f := strings.Split(r, "\t")
					got = append(got, f[0]+" "+f[1]+" "+strings.Fields(f[3])[1])
				}
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("rows %q, want %q", got, tt.want)
				}
			}
		})
	}
}
