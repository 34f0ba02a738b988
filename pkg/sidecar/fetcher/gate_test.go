package fetcher

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// at is one look in a gate case: ms after the start, what the record and
// the probe say, and the verdict the gate must give.
type at struct {
	ms      int
	current string // "" means the gate's own digest; "-" no current link
	rec     *release.Loaded
	probe   string // "" not probed, "ok", or the failure
	want    verdict
	why     string // a substring of step.why
	exited  bool
	reason  refresh.Reason
}

func loading(d string, pid int) *release.Loaded { return &release.Loaded{Digest: d, PID: pid} }
func ready(d string, pid int) *release.Loaded {
	return &release.Loaded{Digest: d, PID: pid, Ready: true}
}
func exited(d string, pid int, wasReady bool, e *release.AppError) *release.Loaded {
	return &release.Loaded{Digest: d, PID: pid, Ready: wasReady, Exit: &release.Exit{Code: 1, Error: e}}
}

// withDeps is rec with a dependency record in state st.
func withDeps(rec *release.Loaded, st release.DepsState) *release.Loaded {
	rec.Deps = &release.Deps{Lockfile: "package-lock.json", Key: strings.Repeat("ab", 32), State: st, Manager: "npm"}
	return rec
}

// depsFailed is a process that exited because its dependencies failed.
func depsFailed(d string, pid int, reason refresh.Reason, output string) *release.Loaded {
	rec := withDeps(exited(d, pid, false, &release.AppError{Name: "Error", Message: "npm ci failed (exit code 1):\n" + output}), release.DepsFailed)
	rec.Deps.Reason, rec.Deps.Output = reason, output
	return rec
}

var syntaxError = &release.AppError{Name: "SyntaxError", Message: "Unexpected identifier 'oops'", Frames: []string{"server.js:2"}}

// TestGate is the health gate's decision table: for each sequence of
// looks, the verdicts live, crashed, unhealthy, down and up.
func TestGate(t *testing.T) {
	const timeout = 30 * time.Second
	probeGate := gate{digest: digestB, probe: true, threshold: 3, timeout: timeout, retouch: 2 * time.Second}
	plain := gate{digest: digestB, timeout: timeout, installTimeout: 10 * time.Minute, retouch: 2 * time.Second}
	cases := []struct {
		name  string
		gate  gate
		looks []at
	}{
		{"loaded, no probe: live", plain, []at{
			{ms: 0, rec: ready(digestA, 1)},
			{ms: 300, rec: loading(digestB, 2)},
			{ms: 400, rec: ready(digestB, 2), want: vLive},
			{ms: 500, rec: ready(digestB, 2)},
		}},
		{"the first record is already ready", plain, []at{
			{ms: 10, rec: ready(digestB, 2), want: vLive},
		}},
		{"probe must pass after loading", probeGate, []at{
			{ms: 100, rec: ready(digestB, 2), probe: "connection refused"},
			{ms: 150, rec: ready(digestB, 2), probe: "ok", want: vLive},
		}},
		{"probe not run while loading", probeGate, []at{
			{ms: 100, rec: loading(digestB, 2)},
			{ms: 200, rec: ready(digestB, 2)},
			{ms: 250, rec: ready(digestB, 2), probe: "ok", want: vLive},
		}},
		{"syntax error at load: crashed", plain, []at{
			{ms: 100, rec: loading(digestB, 2)},
			{ms: 150, rec: exited(digestB, 2, false, syntaxError), want: vCrashed, why: "SyntaxError: Unexpected identifier 'oops'\n    at server.js:2", exited: true},
		}},
		{"a crash seen in the first look", plain, []at{
			{ms: 100, rec: exited(digestB, 2, false, syntaxError), want: vCrashed, why: "SyntaxError", exited: true},
		}},
		{"exit with a code before the probe passed: crashed", probeGate, []at{
			{ms: 100, rec: ready(digestB, 2), probe: "connection refused"},
			{ms: 150, rec: &release.Loaded{Digest: digestB, PID: 2, Ready: true, Exit: &release.Exit{Code: 7}}, want: vCrashed, why: "the process exited with code 7", exited: true},
		}},
		{"probe answers 500 until the timeout: unhealthy", probeGate, []at{
			{ms: 100, rec: ready(digestB, 2), probe: "readinessProbe GET http://127.0.0.1:3000/ready: 500 Internal Server Error"},
			{ms: 29_000, rec: ready(digestB, 2), probe: "readinessProbe GET http://127.0.0.1:3000/ready: 500 Internal Server Error"},
			{ms: 30_100, rec: ready(digestB, 2), want: vUnhealthy, why: "loaded, but its probe had not passed after 30s: readinessProbe GET http://127.0.0.1:3000/ready: 500"},
			{ms: 30_200, rec: ready(digestB, 2)},
		}},
		{"never finishes loading: unhealthy", plain, []at{
			{ms: 100, rec: loading(digestB, 2)},
			{ms: 30_100, rec: loading(digestB, 2), want: vUnhealthy, why: "the entry had not finished loading after 30s"},
		}},
		{"the timeout runs from the process choosing the release", plain, []at{
			{ms: 0, rec: ready(digestA, 1)},
			{ms: 20_000, rec: loading(digestB, 2)},
			{ms: 45_000, rec: ready(digestB, 2), want: vLive},
		}},
		{"a lost touch is made again", plain, []at{
			{ms: 0, rec: ready(digestA, 1)},
			{ms: 1_000, rec: ready(digestA, 1)},
			{ms: 2_000, rec: ready(digestA, 1), want: vTouch},
			{ms: 3_000, rec: ready(digestA, 1)},
			{ms: 4_000, rec: ready(digestA, 1), want: vTouch},
			{ms: 4_100, rec: ready(digestB, 2), want: vLive},
		}},
		{"an app that never started is not touched", gate{digest: digestB, timeout: timeout}, []at{
			{ms: 5_000},
			{ms: 60_000},
			{ms: 61_000, rec: ready(digestB, 2), want: vLive},
		}},
		{"a slow loader is not touched", plain, []at{
			{ms: 100, rec: loading(digestB, 2)},
			{ms: 5_000, rec: loading(digestB, 2)},
			{ms: 9_000, rec: ready(digestB, 2), want: vLive},
		}},
		{"the old process's exit is not the new release's", plain, []at{
			{ms: 100, rec: exited(digestA, 1, true, nil)},
			{ms: 200, rec: ready(digestB, 2), want: vLive},
		}},
		{"replaced: looks say nothing", plain, []at{
			{ms: 100, current: digestC, rec: exited(digestB, 2, false, syntaxError)},
		}},
		{"crash on a request after live: down, then up after the restart", plain, []at{
			{ms: 100, rec: ready(digestB, 2), want: vLive},
			{ms: 5_000, rec: exited(digestB, 2, true, &release.AppError{Name: "TypeError", Message: "boom"}), want: vDown, why: "TypeError: boom", exited: true},
			{ms: 5_100, rec: exited(digestB, 2, true, nil)},
			{ms: 6_000, rec: loading(digestB, 3)},
			{ms: 6_100, rec: ready(digestB, 3), want: vUp},
		}},
		{"a live release's probe keeps failing: down, then up", probeGate, []at{
			{ms: 100, rec: ready(digestB, 2), probe: "ok", want: vLive},
			{ms: 10_000, rec: ready(digestB, 2), probe: "timeout"},
			{ms: 20_000, rec: ready(digestB, 2), probe: "timeout"},
			{ms: 30_000, rec: ready(digestB, 2), probe: "timeout", want: vDown, why: "failed 3 checks in a row: timeout"},
			{ms: 40_000, rec: ready(digestB, 2), probe: "timeout"},
			{ms: 50_000, rec: ready(digestB, 2), probe: "ok", want: vUp},
		}},
		{"one probe failure among passes is not down", probeGate, []at{
			{ms: 100, rec: ready(digestB, 2), probe: "ok", want: vLive},
			{ms: 10_000, rec: ready(digestB, 2), probe: "timeout"},
			{ms: 20_000, rec: ready(digestB, 2), probe: "ok"},
			{ms: 30_000, rec: ready(digestB, 2), probe: "timeout"},
			{ms: 40_000, rec: ready(digestB, 2), probe: "timeout"},
		}},
		{"trusted: a crash at load is down, not a rollback", gate{digest: digestA, trusted: true, timeout: timeout}, []at{
			{ms: 100, current: digestA, rec: exited(digestA, 2, false, syntaxError), want: vDown, why: "SyntaxError", exited: true},
		}},
		{"trusted: the timeout is down", gate{digest: digestA, trusted: true, timeout: timeout}, []at{
			{ms: 100, current: digestA, rec: loading(digestA, 2)},
			{ms: 31_000, current: digestA, rec: loading(digestA, 2), want: vDown, why: "had not finished loading"},
			{ms: 32_000, current: digestA, rec: ready(digestA, 2), want: vLive},
		}},
		{"a clean exit of a live release is not a crash", plain, []at{
			{ms: 100, rec: ready(digestB, 2), want: vLive},
			{ms: 200, rec: &release.Loaded{Digest: digestB, PID: 2, Ready: true, Exit: &release.Exit{Code: 0}}, want: vStopped, why: "code 0"},
			{ms: 300, rec: &release.Loaded{Digest: digestB, PID: 2, Ready: true, Exit: &release.Exit{Code: 0}}},
		}},
		{"a clean exit while loading is a crash", plain, []at{
			{ms: 100, rec: &release.Loaded{Digest: digestB, PID: 2, Exit: &release.Exit{Code: 0}}, want: vCrashed, why: "the process exited with code 0", exited: true},
		}},
		{"installing: said once, and the health timeout waits for it", plain, []at{
			{ms: 100, rec: withDeps(loading(digestB, 2), release.DepsInstalling), want: vInstalling},
			{ms: 200, rec: withDeps(loading(digestB, 2), release.DepsInstalling)},
			{ms: 90_000, rec: withDeps(loading(digestB, 2), release.DepsInstalling)},
			{ms: 91_000, rec: withDeps(loading(digestB, 2), release.DepsInstalled)},
			{ms: 120_000, rec: withDeps(loading(digestB, 2), release.DepsInstalled)},
			{ms: 121_100, rec: withDeps(loading(digestB, 2), release.DepsInstalled), want: vUnhealthy, why: "the entry had not finished loading after 30s"},
		}},
		{"installed, then live", plain, []at{
			{ms: 100, rec: withDeps(loading(digestB, 2), release.DepsInstalling), want: vInstalling},
			{ms: 5_000, rec: withDeps(ready(digestB, 2), release.DepsInstalled), want: vLive},
		}},
		{"an install over its cap: unhealthy, an install failure", plain, []at{
			{ms: 100, rec: withDeps(loading(digestB, 2), release.DepsInstalling), want: vInstalling},
			{ms: 600_100, rec: withDeps(loading(digestB, 2), release.DepsInstalling), want: vUnhealthy, why: "the install of package-lock.json's dependencies had not finished after 10m0s", reason: refresh.ReasonDepsInstall},
			{ms: 600_200, rec: withDeps(loading(digestB, 2), release.DepsInstalling)},
		}},
		{"the install failed: crashed, with its reason and output", plain, []at{
			{ms: 100, rec: withDeps(loading(digestB, 2), release.DepsInstalling), want: vInstalling},
			{ms: 3_000, rec: depsFailed(digestB, 2, refresh.ReasonDepsInstall, "npm error 404 Not Found - GET http://registry/nope"), want: vCrashed, why: "npm ci failed (exit code 1):\nnpm error 404 Not Found", exited: true, reason: refresh.ReasonDepsInstall},
		}},
		{"no package manager: crashed, with that reason", plain, []at{
			{ms: 100, rec: depsFailed(digestB, 2, refresh.ReasonNoPackageManager, ""), want: vCrashed, exited: true, reason: refresh.ReasonNoPackageManager},
		}},
		{"a reason outside the dependency step's is an install failure", plain, []at{
			{ms: 100, rec: depsFailed(digestB, 2, refresh.ReasonChecksum, ""), want: vCrashed, exited: true, reason: refresh.ReasonDepsInstall},
		}},
		{"an app's crash after its install is the app's", plain, []at{
			{ms: 100, rec: withDeps(exited(digestB, 2, false, syntaxError), release.DepsInstalled), want: vCrashed, why: "SyntaxError", exited: true},
		}},
		{"a restart while installing installs again, and says so", plain, []at{
			{ms: 100, rec: withDeps(loading(digestB, 2), release.DepsInstalling), want: vInstalling},
			{ms: 200, rec: withDeps(loading(digestB, 3), release.DepsInstalling), want: vInstalling},
		}},
		{"trusted image code", gate{digest: "", trusted: true, timeout: timeout}, []at{
			{ms: 100, current: "-", rec: ready("", 2), want: vLive},
			{ms: 200, current: "-", rec: exited("", 2, true, nil), want: vDown, exited: true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Unix(1000, 0)
			g := tc.gate
			g.lastTouch = start
			for i, a := range tc.looks {
				l := look{now: start.Add(time.Duration(a.ms) * time.Millisecond), current: tc.gate.digest}
				switch a.current {
				case "":
				case "-":
					l.current = ""
				default:
					l.current = a.current
				}
				if a.rec != nil {
					l.loaded, l.hasLoaded = *a.rec, true
				}
				if a.probe != "" {
					l.probed = true
					if a.probe != "ok" {
						l.probeErr = errors.New(a.probe)
					}
				}
				var s step
				g, s = g.next(l)
				if s.verdict != a.want || !strings.Contains(s.why, a.why) || s.exited != a.exited || s.reason != a.reason {
					t.Fatalf("look %d (%d ms): %s %q exited=%v reason=%q, want %s %q exited=%v reason=%q", i, a.ms, s.verdict, s.why, s.exited, s.reason, a.want, a.why, a.exited, a.reason)
				}
				if (s.verdict == vInstalling || s.verdict == vLive) && a.rec != nil && s.deps != a.rec.Deps {
					t.Fatalf("look %d (%d ms): %s carries deps %+v, want the record's %+v", i, a.ms, s.verdict, s.deps, a.rec.Deps)
				}
			}
		})
	}
}

func TestRollbackTarget(t *testing.T) {
	onDisk := func(d string) bool { return d == digestA }
	cases := []struct {
		name      string
		good      string
		hasGood   bool
		imageCode bool
		wantTo    string
		wantOK    bool
	}{
		{"the last live release", digestA, true, true, digestA, true},
		{"the last live release, no image code", digestA, true, false, digestA, true},
		{"first push: the image's code", "", true, true, "", true},
		{"the last live release was pruned: the image's code", digestC, true, true, "", true},
		{"first release of a replaced initContainer: nothing", "", false, false, "", false},
		{"the last live release is the failed one", digestB, true, false, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			to, ok := rollbackTarget(digestB, tc.good, tc.hasGood, tc.imageCode, onDisk)
			if to != tc.wantTo || ok != tc.wantOK {
				t.Errorf("rollbackTarget = %q, %v; want %q, %v", to, ok, tc.wantTo, tc.wantOK)
			}
		})
	}
}

// TestGatePreinstalled: a release whose dependencies the previous process
// installed before the publish goes live saying so, although its own
// process found them cached.
func TestGatePreinstalled(t *testing.T) {
	pre := &release.Deps{Lockfile: "package-lock.json", State: release.DepsInstalled, Manager: "npm", Ms: 3200}
	g := gate{digest: digestB, timeout: 30 * time.Second, installTimeout: 10 * time.Minute, preinstalled: pre}
	now := time.Unix(1000, 0)
	g, s := g.next(look{now: now, current: digestB, loaded: *withDeps(ready(digestB, 2), release.DepsCached), hasLoaded: true})
	if s.verdict != vLive || s.deps != pre {
		t.Fatalf("%s with deps %+v; want live with the install before the publish", s.verdict, s.deps)
	}
}
