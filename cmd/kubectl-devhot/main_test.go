package main

import (
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
	crash := func(pod, to string) *eventsv1.Event {
		return refreshEvent(refresh.Record{Marker: refresh.MarkerFail, Digest: digest, Reason: refresh.ReasonAppCrashed,
			Error: "SyntaxError: Unexpected identifier 'oops'\n    at server.js:2", Attempt: 1, GaveUp: true, RolledBackTo: to}, pod, now)
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
		wantOut  []string // printed, in order
	}{
		{"one pod live", []string{"p1"}, 1, []*eventsv1.Event{ok("p1"), live("p1")}, true, "", nil},
		{"published is not live", []string{"p1"}, 1, []*eventsv1.Event{ok("p1")}, false, "", nil},
		{"waits for every pod", []string{"p1", "p2"}, 2, []*eventsv1.Event{live("p1")}, false, "", nil},
		{"another digest", []string{"p1"}, 1, []*eventsv1.Event{refreshEvent(refresh.Record{Marker: refresh.MarkerLive, Digest: "sha256:bbbb"}, "p1", now)}, false, "", nil},
		{"a pod that is not listed", []string{"p1"}, 1, []*eventsv1.Event{live("old-pod")}, false, "", nil},
		{"no pods listed: counts replicas", nil, 2, []*eventsv1.Event{live("a"), live("a"), live("b")}, true, "", nil},
		{"not from the fetcher", []string{"p1"}, 1, []*eventsv1.Event{forged}, false, "", nil},
		{"no record", []string{"p1"}, 1, []*eventsv1.Event{plain}, false, "", nil},
		{"failure names the reason", []string{"p1"}, 1, []*eventsv1.Event{refreshEvent(refresh.Record{Marker: refresh.MarkerFail, Digest: digest,
			Reason: refresh.ReasonChecksum, Error: "sha256 of the download is sha256:cc", Attempt: 1, RetryIn: 713 * time.Millisecond, Commit: "abc"}, "p1", now)},
			true, "sha256:aaaa failed on 1 of 1 pods (checksum)",
			[]string{"  p1: refresh failed: checksum: sha256 of the download is sha256:cc\n    the fetcher retries in 713ms; the previous code serves\n"}},
		{"failure after giving up", []string{"p1"}, 1, []*eventsv1.Event{refreshEvent(refresh.Record{Marker: refresh.MarkerFail, Digest: digest,
			Reason: refresh.ReasonSizeLimit, Error: "too big", Attempt: 3, GaveUp: true}, "p1", now)},
			true, "(size_limit)", []string{"  p1: refresh failed: size_limit: too big\n    the previous code serves\n"}},
		{"waits for every pod to settle", []string{"p1", "p2"}, 2, []*eventsv1.Event{crash("p1", digest)}, false, "", nil},
		{"a crash on every pod: each rolled back", []string{"p1", "p2"}, 2, []*eventsv1.Event{ok("p1"), ok("p2"), crash("p1", digest), crash("p2", refresh.ImageCode)},
			true, "sha256:aaaa failed on 2 of 2 pods (app_crashed)",
			[]string{"  p1: the app crashed on it: SyntaxError: Unexpected identifier 'oops'\n        at server.js:2\n    rolled back to sha256:aaaa\n" +
				"  p2: the app crashed on it: SyntaxError: Unexpected identifier 'oops'\n        at server.js:2\n    rolled back to the image's own code\n"}},
		{"one live, one unhealthy", []string{"p1", "p2"}, 2, []*eventsv1.Event{live("p1"), refreshEvent(refresh.Record{Marker: refresh.MarkerFail, Digest: digest,
			Reason: refresh.ReasonUnhealthy, Error: "loaded, but its probe had not passed after 30s: readinessProbe GET http://127.0.0.1:3000/ready: 500 Internal Server Error", Attempt: 1, GaveUp: true}, "p2", now)},
			true, "failed on 1 of 2 pods (unhealthy)",
			[]string{"  p1: live in ", "  p2: the app was not healthy on it in time: loaded, but its probe had not passed after 30s: readinessProbe GET http://127.0.0.1:3000/ready: 500 Internal Server Error\n    not rolled back: the pod has nothing earlier to run\n"}},
		{"live after a failed try", []string{"p1"}, 1, []*eventsv1.Event{refreshEvent(refresh.Record{Marker: refresh.MarkerFail, Digest: digest,
			Reason: refresh.ReasonDownload, Error: "connection refused", Attempt: 1, RetryIn: time.Second}, "p1", now), live("p1")},
			true, "", []string{"  p1: live in "}},
		{"dependencies installed: said while, and after", []string{"p1", "p2"}, 2, []*eventsv1.Event{
			refreshEvent(refresh.Record{Marker: refresh.MarkerInstall, Digest: digest, Lockfile: "package-lock.json"}, "p1", now),
			refreshEvent(refresh.Record{Marker: refresh.MarkerLive, Digest: digest, Live: 5 * time.Second, Deps: refresh.DepsInstalled, Install: 4100 * time.Millisecond}, "p1", now),
			refreshEvent(refresh.Record{Marker: refresh.MarkerLive, Digest: digest, Live: 400 * time.Millisecond, Deps: refresh.DepsCached}, "p2", now)},
			true, "", []string{"  p1: installing the dependencies of package-lock.json in the pod…\n", "  p1: live in ", " (dependencies installed in 4100ms)\n",
				"  p2: live in ", " (dependencies: cached in the pod, nothing installed)\n"}},
		{"an install failure: npm's lines and the rollback", []string{"p1"}, 1, []*eventsv1.Event{refreshEvent(refresh.Record{Marker: refresh.MarkerFail, Digest: digest,
			Reason: refresh.ReasonDepsInstall, Error: "npm ci failed (exit code 1):\nnpm error code E404\nnpm error 404 Not Found - GET http://r/nope/-/nope-1.0.0.tgz", Attempt: 1, GaveUp: true, RolledBackTo: "sha256:bbbb"}, "p1", now)},
			true, "(deps_install_failed)", []string{"  p1: installing its dependencies failed: npm ci failed (exit code 1):\n    npm error code E404\n    npm error 404 Not Found - GET http://r/nope/-/nope-1.0.0.tgz\n    rolled back to sha256:bbbb\n"}},
		{"no package manager, found before the publish", []string{"p1"}, 1, []*eventsv1.Event{refreshEvent(refresh.Record{Marker: refresh.MarkerFail, Digest: digest,
			Reason: refresh.ReasonNoPackageManager, Error: "package-lock.json needs npm", Attempt: 1, GaveUp: true}, "p1", now)},
			true, "(no_package_manager)", []string{"  p1: its dependencies cannot be installed: package-lock.json needs npm\n    the previous code serves\n"}},
		{"a long error is cut", []string{"p1"}, 1, []*eventsv1.Event{refreshEvent(refresh.Record{Marker: refresh.MarkerFail, Digest: digest,
			Reason: refresh.ReasonAppCrashed, Error: "E\n1\n2\n3\n4\n5\n6\n7", Attempt: 1, GaveUp: true}, "p1", now)},
			true, "(app_crashed)", []string{"  p1: the app crashed on it: E\n    1\n    2\n    3\n    4\n    5\n    …\n    not rolled back"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			r := newRollout(digest, time.Now(), tt.pods, tt.replicas, &out)
			var done bool
			for _, e := range tt.events {
				done = r.observe(e, time.Now())
			}
			if done != tt.done {
				t.Errorf("done %v, want %v", done, tt.done)
			}
			if err := r.result(); done && ((err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("result %v, want %q", err, tt.wantErr)
			}
			rest := out.String()
			for _, w := range tt.wantOut {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output\n%s\nlacks, in order, %q", out.String(), w)
				}
				rest = rest[i+len(w):]
			}
			if !done && r.stuck() == "" {
				t.Error("not done, but stuck() explains nothing")
			}
		})
	}
}

// TestPodStatuses folds each pod's refresh Events for status: what it
// runs, how far the latest refresh got, and the last failure.
func TestPodStatuses(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 10, 0, time.UTC)
	a, b := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	ev := func(rec refresh.Record, pod string, ms int) eventsv1.Event {
		return *refreshEvent(rec, pod, now.Add(time.Duration(ms-10000)*time.Millisecond))
	}
	ok := func(d string) refresh.Record { return refresh.Record{Marker: refresh.MarkerOK, Digest: d} }
	live := func(d string) refresh.Record { return refresh.Record{Marker: refresh.MarkerLive, Digest: d} }
	crash := func(d, to string) refresh.Record {
		return refresh.Record{Marker: refresh.MarkerFail, Reason: refresh.ReasonAppCrashed, Digest: d, Error: "SyntaxError: x\n    at server.js:2", Attempt: 1, GaveUp: true, RolledBackTo: to}
	}
	down := refresh.Record{Marker: refresh.MarkerFail, Reason: refresh.ReasonAppDown, Digest: a, Error: "TypeError: boom", Attempt: 1, RetryIn: time.Second}
	other := ev(live(b), "q", 9000)
	other.ReportingController, other.Reason = "kubelet", "Started"
	tests := []struct {
		name    string
		desired string
		events  []eventsv1.Event
		want    []string // the table's rows, without the times
	}{
		{"live after published", a,
			[]eventsv1.Event{ev(live(a), "p", 5300), ev(ok(a), "p", 5001)},
			[]string{"p live sha256:aaaaaaaaaaaa <none>"}},
		{"published, not live yet", b,
			[]eventsv1.Event{ev(live(a), "p", 1000), ev(ok(b), "p", 5000)},
			[]string{"p loading sha256:bbbbbbbbbbbb sha256:aaaaaaaaaaaa <none>"}},
		{"a crash rolled back: the old release runs", b,
			[]eventsv1.Event{ev(live(a), "p", 1000), ev(ok(b), "p", 5000), ev(crash(b, a), "p", 5500)},
			[]string{"p rolled back sha256:aaaaaaaaaaaa app_crashed on sha256:bbbbbbbbbbbb, rolled back to sha256:aaaaaaaaaaaa"}},
		{"a first push rolled back to the image", b,
			[]eventsv1.Event{ev(ok(b), "p", 5000), ev(crash(b, refresh.ImageCode), "p", 5500)},
			[]string{"p rolled back the image's code app_crashed on sha256:bbbbbbbbbbbb, rolled back to the image's code"}},
		{"down after live", a,
			[]eventsv1.Event{ev(live(a), "p", 1000), ev(down, "p", 6000)},
			[]string{"p down sha256:aaaaaaaaaaaa app_down on sha256:aaaaaaaaaaaa"}},
		{"the last failure stays after a good push", a,
			[]eventsv1.Event{ev(crash(b, a), "p", 1000), ev(ok(a), "p", 2000), ev(live(a), "p", 2500)},
			[]string{"p live sha256:aaaaaaaaaaaa app_crashed on sha256:bbbbbbbbbbbb, rolled back to sha256:aaaaaaaaaaaa"}},
		{"a tie: the later stage wins", a,
			[]eventsv1.Event{ev(live(a), "p", 5000), ev(ok(a), "p", 5000)},
			[]string{"p live sha256:aaaaaaaaaaaa <none>"}},
		{"one row per pod, sorted, other Events ignored", a,
			[]eventsv1.Event{other, ev(live(a), "q", 5000), ev(live(a), "p", 6000)},
			[]string{"p live sha256:aaaaaaaaaaaa <none>", "q live sha256:aaaaaaaaaaaa <none>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The List's order must not matter: try it both ways.
			reversed := slices.Clone(tt.events)
			slices.Reverse(reversed)
			for _, events := range [][]eventsv1.Event{tt.events, reversed} {
				var got []string
				for _, p := range podStatuses(events, tt.desired) {
					f := strings.Split(p.row(now), "\t")
					row := strings.Join([]string{f[0], f[1], f[2]}, " ")
					if f[4] != "<none>" {
						// drop ", N ago"
						reason, rest, _ := strings.Cut(f[4], ", ")
						_, back, _ := strings.Cut(rest, " ago")
						row += " " + reason + back
					} else {
						row += " <none>"
					}
					got = append(got, row)
				}
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
				}
			}
		})
	}
}
