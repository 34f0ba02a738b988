package fetcher

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/probe"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// These tests play the app's part in the health gate: they write the
// record that boot.cjs writes (test/node runs the real one under node).

func writeRecord(t *testing.T, workspace string, l release.Loaded) {
	t.Helper()
	l.Time = time.Now()
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(workspace, sidecar.StateDir, "loaded.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(workspace, sidecar.LoadedFile)); err != nil {
		t.Fatal(err)
	}
}

func crashed(digest string, pid int) release.Loaded {
	return release.Loaded{Digest: digest, PID: pid, Exit: &release.Exit{Code: 1, Error: &release.AppError{
		Name: "Error", Code: "MODULE_NOT_FOUND", Message: "Cannot find module 'left-pad'", Frames: []string{"at Object.<anonymous> (server.js:1:1)"},
	}}}
}

// failRecord waits for the one REFRESH_FAIL line of reason.
func (h *harness) failRecord(reason refresh.Reason) refresh.Record {
	h.t.Helper()
	var r refresh.Record
	wait.Until(h.t, "REFRESH_FAIL reason="+string(reason), 10*time.Second, func() bool {
		for _, line := range h.logs.lines("REFRESH_FAIL") {
			if r = mustParse(h.t, line); r.Reason == reason {
				return true
			}
		}
		return false
	})
	return r
}

// TestGateRollsBackACrash: the app crashes at load on B, so A, the release
// it ran, is put back and B is not tried again until a new digest.
func TestGateRollsBackACrash(t *testing.T) {
	srv := newArtifactServer(t)
	artA, artB, artC := app(t, "a"), app(t, "b"), app(t, "c")
	urlA, urlB, urlC := srv.serve("/a.tgz", artA), srv.serve("/b.tgz", artB), srv.serve("/c.tgz", artC)
	h := newHarness(t, target(digestOf(artA), urlA), nil)
	a := preload(t, h.cfg.Workspace, urlA, artA)
	writeRecord(t, h.cfg.Workspace, release.Loaded{Digest: a, PID: 1, Ready: true})
	f := h.open()
	h.run()
	wait.Until(t, "the trusted release seen up", 10*time.Second, func() bool { return strings.Contains(h.logs.String(), `msg="the app runs"`) })

	b := digestOf(artB)
	h.annotate(target(b, urlB))
	h.waitLines("REFRESH_OK", 1)
	writeRecord(t, h.cfg.Workspace, crashed(b, 2))
	r := h.failRecord(refresh.ReasonAppCrashed)
	if r.Digest != b || r.RolledBackTo != a || !r.GaveUp || !strings.Contains(r.Error, "Error [MODULE_NOT_FOUND]: Cannot find module 'left-pad'\n    at Object.<anonymous> (server.js:1:1)") {
		t.Errorf("record %+v", r)
	}
	if got := f.ws.Current(); got != a {
		t.Errorf("current = %q after the rollback, want %q", got, a)
	}
	if got := value(t, f.metrics.Rollbacks); got != 1 {
		t.Errorf("dev_hot_rollbacks_total = %v", got)
	}
	if got := value(t, f.metrics.Failures.WithLabelValues(string(refresh.ReasonAppCrashed))); got != 1 {
		t.Errorf(`dev_hot_refresh_failure_total{reason="app_crashed"} = %v`, got)
	}
	ev := h.waitEvent(refresh.EventFailed)
	if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Note, "Cannot find module 'left-pad'") || !strings.Contains(ev.Note, "rolled back to "+a) {
		t.Errorf("RefreshFailed %s %q", ev.Type, ev.Note)
	}
	if got := f.ws.Rejected(); got != b {
		t.Errorf("rejected %q, want %q", got, b)
	}

	// The app comes back on A; resyncs do not try B again.
	writeRecord(t, h.cfg.Workspace, release.Loaded{Digest: a, PID: 3, Ready: true})
	wait.Until(t, "the rolled-back release seen up", 10*time.Second, func() bool {
		return strings.Count(h.logs.String(), `msg="the app runs"`) == 2
	})
	time.Sleep(2500 * time.Millisecond) // two resyncs
	if n := srv.count("/b.tgz"); n != 1 {
		t.Errorf("B downloaded %d times, want once", n)
	}
	if n := len(h.logs.lines("REFRESH_OK")); n != 1 {
		t.Errorf("%d REFRESH_OK, want B's only", n)
	}

	// A new digest goes live, and clears the rejection.
	c := digestOf(artC)
	h.annotate(target(c, urlC))
	h.waitLines("REFRESH_OK", 2)
	writeRecord(t, h.cfg.Workspace, release.Loaded{Digest: c, PID: 4, Ready: true})
	if live := mustParse(t, h.waitLines("REFRESH_LIVE", 1)[0]); live.Digest != c {
		t.Errorf("live %+v, want %s", live, c)
	}
	if got := f.ws.Rejected(); got != "" {
		t.Errorf("rejected %q after a new digest", got)
	}
}

// TestGateFirstPushBackToImage: a crash on the first push of a pod that
// runs its image's code goes back to that code.
func TestGateFirstPushBackToImage(t *testing.T) {
	srv := newArtifactServer(t)
	art := app(t, "b")
	b := digestOf(art)
	h := newHarness(t, nil, func(c *Config) { c.AppDir = "/app" })
	f := h.open()
	writeRecord(t, h.cfg.Workspace, release.Loaded{PID: 1, Ready: true, AppDir: "/app"})
	h.run()
	h.annotate(target(b, srv.serve("/b.tgz", art)))
	h.waitLines("REFRESH_OK", 1)
	writeRecord(t, h.cfg.Workspace, crashed(b, 2))
	if r := h.failRecord(refresh.ReasonAppCrashed); r.RolledBackTo != refresh.ImageCode {
		t.Errorf("rolled_back_to %q, want %q", r.RolledBackTo, refresh.ImageCode)
	}
	if got := f.ws.Current(); got != "" {
		t.Errorf("current = %q, want none: the image's code", got)
	}
	if code, body := get(t, f.handler(), "/readyz"); code != http.StatusOK || !strings.Contains(body, "release zero") {
		t.Errorf("/readyz after rolling back to the image: %d %q", code, body)
	}
}

// TestGateNothingToRollBackTo: the first release of a pod whose
// initContainer was replaced has nothing before it; the failure says so.
func TestGateNothingToRollBackTo(t *testing.T) {
	srv := newArtifactServer(t)
	art := app(t, "b")
	b := digestOf(art)
	h := newHarness(t, target(b, srv.serve("/b.tgz", art)), nil)
	h.run()
	h.waitLines("REFRESH_OK", 1)
	writeRecord(t, h.cfg.Workspace, crashed(b, 2))
	r := h.failRecord(refresh.ReasonAppCrashed)
	if r.RolledBackTo != "" || h.f.ws.Current() != b {
		t.Errorf("record %+v, current %q: want no rollback", r, h.f.ws.Current())
	}
	if ev := h.waitEvent(refresh.EventFailed); !strings.Contains(ev.Note, "nothing to roll back to") {
		t.Errorf("note %q", ev.Note)
	}
}

// probeServer answers the app's readiness path with status, as an app
// that listens but is not ready would.
func probeServer(t *testing.T, status *atomic.Int32) *probe.Probe {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte("db: not connected"))
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	return &probe.Probe{Source: probe.SourceReadiness, HTTP: &probe.HTTPGetAction{Scheme: "HTTP", Port: port, Path: "/ready"},
		TimeoutSeconds: 1, PeriodSeconds: 1, FailureThreshold: 2}
}

// TestGateUnhealthy: loaded, but the probe answers 500 past the health
// timeout that the Deployment sets: rolled back.
func TestGateUnhealthy(t *testing.T) {
	srv := newArtifactServer(t)
	artA, artB := app(t, "a"), app(t, "b")
	urlA, urlB := srv.serve("/a.tgz", artA), srv.serve("/b.tgz", artB)
	var status atomic.Int32
	status.Store(http.StatusOK)
	p := probeServer(t, &status)
	h := newHarness(t, target(digestOf(artA), urlA), func(c *Config) { c.AppProbe = p })
	a := preload(t, h.cfg.Workspace, urlA, artA)
	writeRecord(t, h.cfg.Workspace, release.Loaded{Digest: a, PID: 1, Ready: true})
	h.run()

	status.Store(http.StatusInternalServerError)
	b := digestOf(artB)
	ann := target(b, urlB)
	ann[annotations.HealthTimeoutSec] = "1"
	h.annotate(ann)
	h.waitLines("REFRESH_OK", 1)
	start := time.Now()
	writeRecord(t, h.cfg.Workspace, release.Loaded{Digest: b, PID: 2, Ready: true})
	r := h.failRecord(refresh.ReasonUnhealthy)
	if took := time.Since(start); took < time.Second {
		t.Errorf("unhealthy after %v, before the health timeout of 1s", took)
	}
	if r.RolledBackTo != a || !strings.Contains(r.Error, "loaded, but its probe had not passed after 1s: readinessProbe GET http://127.0.0.1:") ||
		!strings.Contains(r.Error, "/ready: 500 Internal Server Error: db: not connected") {
		t.Errorf("record %+v", r)
	}
	if len(h.logs.lines("REFRESH_LIVE")) != 0 {
		t.Error("REFRESH_LIVE for a release whose probe never passed")
	}
}

// TestGateAppDown: a release that went live and then exits is reported
// down and restarted on the same release after a backoff, not rolled back.
func TestGateAppDown(t *testing.T) {
	srv := newArtifactServer(t)
	art := app(t, "b")
	b := digestOf(art)
	h := newHarness(t, target(b, srv.serve("/b.tgz", art)), nil)
	f := h.open()
	h.run()
	h.waitLines("REFRESH_OK", 1)
	writeRecord(t, h.cfg.Workspace, release.Loaded{Digest: b, PID: 2, Ready: true})
	h.waitLines("REFRESH_LIVE", 1)

	boot := filepath.Join(h.cfg.Workspace, sidecar.BootFile)
	before, err := os.Stat(boot)
	if err != nil {
		t.Fatal(err)
	}
	down := release.Loaded{Digest: b, PID: 2, Ready: true, Exit: &release.Exit{Code: 1, Error: &release.AppError{Name: "TypeError", Message: "boom", Frames: []string{"at handler (server.js:9:3)"}}}}
	writeRecord(t, h.cfg.Workspace, down)
	r := h.failRecord(refresh.ReasonAppDown)
	if r.Digest != b || r.GaveUp || r.RetryIn < restartBackoff.Base/2 || r.RetryIn > restartBackoff.Base || r.RolledBackTo != "" ||
		r.Error != "TypeError: boom\n    at handler (server.js:9:3)" {
		t.Errorf("record %+v", r)
	}
	wait.Until(t, "the restart's touch", 5*time.Second, func() bool {
		fi, err := os.Stat(boot)
		return err == nil && fi.ModTime().After(before.ModTime())
	})
	if got := f.ws.Current(); got != b {
		t.Errorf("current = %q, want %q still: a crash after live is not rolled back", got, b)
	}
	writeRecord(t, h.cfg.Workspace, release.Loaded{Digest: b, PID: 3, Ready: true})
	wait.Until(t, "up again", 5*time.Second, func() bool { return strings.Contains(h.logs.String(), `msg="the app is up again"`) })
	if got := value(t, f.metrics.Rollbacks); got != 0 {
		t.Errorf("dev_hot_rollbacks_total = %v, want 0", got)
	}
}

// TestGateRevertToLive: asking again for the release that serves, as a
// developer does after a rollback, is reported live at once.
func TestGateRevertToLive(t *testing.T) {
	srv := newArtifactServer(t)
	artA, artB := app(t, "a"), app(t, "b")
	urlA, urlB := srv.serve("/a.tgz", artA), srv.serve("/b.tgz", artB)
	h := newHarness(t, target(digestOf(artA), urlA), nil)
	a := preload(t, h.cfg.Workspace, urlA, artA)
	writeRecord(t, h.cfg.Workspace, release.Loaded{Digest: a, PID: 1, Ready: true})
	h.run()
	b := digestOf(artB)
	h.annotate(target(b, urlB))
	h.waitLines("REFRESH_OK", 1)
	writeRecord(t, h.cfg.Workspace, crashed(b, 2))
	h.failRecord(refresh.ReasonAppCrashed)
	writeRecord(t, h.cfg.Workspace, release.Loaded{Digest: a, PID: 3, Ready: true})
	wait.Until(t, "A up again", 10*time.Second, func() bool { return strings.Count(h.logs.String(), `msg="the app runs"`) == 2 })

	h.annotate(target(a, urlA))
	if r := mustParse(t, h.waitLines("REFRESH_LIVE", 1)[0]); r.Digest != a {
		t.Errorf("live %+v, want %s", r, a)
	}
	if n := srv.count("/a.tgz"); n != 1 {
		t.Errorf("A downloaded %d times, want once (preloaded)", n)
	}
}
