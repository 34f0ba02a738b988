package fetcher

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// value reads a counter or gauge. (prometheus/testutil would need a go.sum
// entry that the module does not have.)
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func histogramCount(t *testing.T, f *Fetcher) uint64 {
	t.Helper()
	var m dto.Metric
	if err := f.metrics.Latency.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// TestRefreshOKDelta: REFRESH_OK says where a delta release's files came
// from: the second release links the files the first one has.
func TestRefreshOKDelta(t *testing.T) {
	srv := newArtifactServer(t)
	const blobs = "/v1/namespaces/ns/deployments/web/blobs/sha256/"
	blob := func(b []byte) string {
		hex := strings.TrimPrefix(digestOf(b), "sha256:")
		return srv.serve(blobs+hex, b)
	}
	build := func(files ...string) (string, string) {
		var es []manifest.Entry
		for i := 0; i < len(files); i += 2 {
			blob([]byte(files[i+1]))
			es = append(es, manifest.Entry{Path: files[i], Mode: manifest.ModeFile, Size: int64(len(files[i+1])), Hex: strings.TrimPrefix(digestOf([]byte(files[i+1])), "sha256:")})
		}
		root, parts, err := manifest.Build(es)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			blob(p.Data)
		}
		return digestOf(root), blob(root)
	}
	dA, uA := build("server.js", "console.log('A')\n", "version.txt", "A")
	dB, uB := build("server.js", "console.log('A')\n", "version.txt", "B")
	h := newHarness(t, target(dA, uA), nil)
	h.open()
	h.run()
	h.waitLines("REFRESH_OK", 1)
	h.annotate(target(dB, uB))
	lines := h.waitLines("REFRESH_OK", 2)
	for i, want := range []refresh.Record{{Digest: dA, Files: 2, Source: refresh.SourceDelta}, {Digest: dB, Files: 2, Source: refresh.SourceDelta, Reused: 1}} {
		r := mustParse(t, lines[i])
		if r.Digest != want.Digest || r.Files != want.Files || r.Source != want.Source || r.Reused != want.Reused || r.Downloaded == 0 {
			t.Errorf("line %q: %+v, want %+v", lines[i], r, want)
		}
	}
}

func TestRefreshOK(t *testing.T) {
	srv := newArtifactServer(t)
	art := app(t, "v1")
	url := srv.serve("/v1.tar.gz", art)
	h := newHarness(t, nil, nil)
	f := h.open()
	if code, body := get(t, f.handler(), "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no release") {
		t.Fatalf("/readyz before the first release: %d %q", code, body)
	}
	if code, _ := get(t, f.handler(), "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	h.run()
	h.waitLines(`time=`, 1)
	wait.Until(t, "the missing digest logged", 10*time.Second, func() bool {
		return strings.Contains(h.logs.String(), `msg="no aether.dev/digest annotation yet"`)
	})

	a := target(digestOf(art), url)
	a[annotations.CommitSHA] = "0123abc"
	a[annotations.BuildTimestamp] = "2026-05-01T10:00:00Z"
	h.annotate(a)
	line := h.waitLines("REFRESH_OK", 1)[0]
	r := mustParse(t, line)
	if r.Digest != digestOf(art) || r.Files != 2 || r.Downloaded != int64(len(art)) || r.Source != refresh.SourceArchive || r.Commit != "0123abc" || r.BuildTimestamp != "2026-05-01T10:00:00Z" {
		t.Errorf("line %q: %+v", line, r)
	}
	if got := f.ws.Current(); got != digestOf(art) {
		t.Errorf("current = %q", got)
	}
	// Any pod can ask /readyz: it says a release is live, not which.
	if code, body := get(t, f.handler(), "/readyz"); code != http.StatusOK || !strings.Contains(body, "a release is live") ||
		strings.Contains(body, strings.TrimPrefix(digestOf(art), "sha256:")) {
		t.Errorf("/readyz after the first release: %d %q, want ok without the digest", code, body)
	}

	if got := value(t, f.metrics.Refreshes); got != 1 {
		t.Errorf("dev_hot_refresh_total = %v", got)
	}
	if got := histogramCount(t, f); got != 1 {
		t.Errorf("latency samples = %d", got)
	}
	if got := value(t, f.metrics.LastSuccess); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("dev_hot_last_success_timestamp_seconds = %v", got)
	}
	_, metrics := get(t, f.handler(), "/metrics")
	for _, want := range []string{
		"dev_hot_refresh_total 1",
		`dev_hot_refresh_failure_total{reason="checksum"} 0`,
		"dev_hot_refresh_latency_seconds_count 1",
		"dev_hot_refresh_consecutive_failures 0",
		"dev_hot_last_success_timestamp_seconds ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	ev := h.waitEvent(refresh.EventSucceeded)
	if ev.Type != corev1.EventTypeNormal || ev.Namespace != testNamespace ||
		ev.Regarding.Kind != "Deployment" || ev.Regarding.Name != testDeployment || ev.Regarding.UID != "uid-1" ||
		ev.Related == nil || ev.Related.Kind != "Pod" || ev.Related.Name != testPod || ev.ReportingInstance != testPod {
		t.Errorf("event %+v", ev)
	}
	for _, want := range []string{digestOf(art), testPod, "ms", "0123abc"} {
		if !strings.Contains(ev.Note, want) {
			t.Errorf("event note %q lacks %q", ev.Note, want)
		}
	}
	if got, pod, ok := refresh.FromEvent(ev); !ok || pod != testPod || got.String() != r.String() {
		t.Errorf("the event's record %+v from %s, want the log line's %+v", got, pod, r)
	}
}

// TestRefreshLive plays the app's part: boot.cjs records what it loaded,
// and the fetcher reports live_ms once the new digest shows up there.
func TestRefreshLive(t *testing.T) {
	srv := newArtifactServer(t)
	art := app(t, "v2")
	h := newHarness(t, target(digestOf(art), srv.serve("/v2.tar.gz", art)), nil)
	h.open()
	writeLoaded(t, h.cfg.Workspace, "sha256:old")
	h.run()
	h.waitLines("REFRESH_OK", 1)
	if len(h.logs.lines("REFRESH_LIVE")) != 0 {
		t.Fatal("REFRESH_LIVE before the app loaded the release")
	}
	writeLoaded(t, h.cfg.Workspace, digestOf(art))
	line := h.waitLines("REFRESH_LIVE", 1)[0]
	if r := mustParse(t, line); r.Marker != refresh.MarkerLive || r.Digest != digestOf(art) {
		t.Errorf("line %q: %+v", line, r)
	}
	ev := h.waitEvent(refresh.EventLive)
	if rec, pod, ok := refresh.FromEvent(ev); ev.Type != corev1.EventTypeNormal || !ok || rec.Digest != digestOf(art) || pod != testPod {
		t.Errorf("RefreshLive event %s %q: %+v from %s", ev.Type, ev.Note, rec, pod)
	}
}

func writeLoaded(t *testing.T, workspace, digest string) {
	t.Helper()
	b, _ := json.Marshal(release.Loaded{Digest: digest, PID: 1, Time: time.Now(), Ready: true})
	tmp := filepath.Join(workspace, sidecar.StateDir, "loaded.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(workspace, sidecar.LoadedFile)); err != nil {
		t.Fatal(err)
	}
}

// TestUnchangedDigestIsNoop is seed acceptance H2: no download, no touch, no
// restart, not even when the Deployment changes in other ways.
func TestUnchangedDigestIsNoop(t *testing.T) {
	srv := newArtifactServer(t)
	art := app(t, "v1")
	url := srv.serve("/v1.tar.gz", art)
	h := newHarness(t, target(digestOf(art), url), nil)
	preload(t, h.cfg.Workspace, url, art)
	boot := filepath.Join(h.cfg.Workspace, sidecar.BootFile)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(boot, old, old); err != nil {
		t.Fatal(err)
	}
	f := h.open()
	if code, _ := get(t, f.handler(), "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with a live release: %d", code)
	}
	h.run()
	wait.Until(t, "the live digest logged", 10*time.Second, func() bool {
		return strings.Contains(h.logs.String(), `msg="digest is live"`)
	})
	a := target(digestOf(art), url)
	a[annotations.CommitSHA] = "again"
	h.annotate(a)
	wait.Until(t, "the update seen", 10*time.Second, func() bool {
		o, _ := f.inbox.get()
		return o.desired.CommitSHA == "again"
	})
	time.Sleep(100 * time.Millisecond)

	if n := srv.count("/v1.tar.gz"); n != 1 {
		t.Errorf("%d requests, want only the preload's", n)
	}
	if fi, err := os.Stat(boot); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("boot.cjs touched: %v %v", fi.ModTime(), err)
	}
	if l := h.logs.lines("REFRESH_"); len(l) != 0 {
		t.Errorf("unexpected %q", l)
	}
	if got := value(t, f.metrics.Refreshes); got != 0 {
		t.Errorf("dev_hot_refresh_total = %v", got)
	}
}

// TestRestartDoesNotRedownload: a fetcher restarted over a workspace whose
// current link already shows the desired digest is ready at once.
func TestRestartDoesNotRedownload(t *testing.T) {
	srv := newArtifactServer(t)
	art := app(t, "v1")
	h := newHarness(t, target(digestOf(art), srv.serve("/v1.tar.gz", art)), nil)
	h.run()
	h.waitLines("REFRESH_OK", 1)
	h.stop()

	h.logs = &logBuffer{}
	f := h.open()
	if code, _ := get(t, f.handler(), "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after restart: %d", code)
	}
	h.run()
	wait.Until(t, "the live digest logged", 10*time.Second, func() bool {
		return strings.Contains(h.logs.String(), `msg="digest is live"`)
	})
	if n := srv.total(); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
	if l := h.logs.lines("REFRESH_"); len(l) != 0 {
		t.Errorf("unexpected %q", l)
	}
}

// TestNewestWins: digest B arrives while A is still downloading; A's
// download is cancelled and only B is ever published.
func TestNewestWins(t *testing.T) {
	srv := newArtifactServer(t)
	artA, artB := app(t, "A"), app(t, "B")
	started, cancelled := make(chan struct{}), make(chan struct{})
	urlA := srv.handle("/a.tar.gz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(artA[:10])
		w.(http.Flusher).Flush()
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	}))
	urlB := srv.serve("/b.tar.gz", artB)
	h := newHarness(t, target(digestOf(artA), urlA), nil)
	f := h.open()
	h.run()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("A was never requested")
	}
	h.annotate(target(digestOf(artB), urlB))
	line := h.waitLines("REFRESH_OK", 1)[0]
	if r := mustParse(t, line); r.Digest != digestOf(artB) {
		t.Fatalf("line %q, want B published", line)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("A's download was not cancelled")
	}
	if got := f.ws.Current(); got != digestOf(artB) {
		t.Errorf("current = %q, want B", got)
	}
	hexA := strings.TrimPrefix(digestOf(artA), "sha256:")
	if _, err := os.Stat(filepath.Join(h.cfg.Workspace, sidecar.ReleasesDir, hexA)); err == nil {
		t.Error("A was published")
	}
	if l := h.logs.lines("REFRESH_FAIL"); len(l) != 0 {
		t.Errorf("a superseded download is not a failure: %q", l)
	}
	if l := h.logs.lines("REFRESH_OK"); len(l) != 1 {
		t.Errorf("REFRESH_OK lines %q", l)
	}
	if !strings.Contains(h.logs.String(), `msg="download cancelled"`) {
		t.Error("the cancellation was not logged")
	}
}

// TestNewerDigestPreemptsExtraction: digest B arrives while A, whose bytes
// have all arrived, is still making thousands of directories (the review
// saw the loop wait 70 s for one deep path). A's Apply must return within
// 1 s, and B go live.
func TestNewerDigestPreemptsExtraction(t *testing.T) {
	srv := newArtifactServer(t)
	var es []entry
	for i := range 400 {
		es = append(es, entry{Header: tar.Header{Name: fmt.Sprintf("d%03d/%s", i, strings.Repeat("x/", 62)), Typeflag: tar.TypeDir, Mode: 0o755}})
	}
	artA, artB := tgz(t, es...), app(t, "B")
	urlA, urlB := srv.serve("/a.tar.gz", artA), srv.serve("/b.tar.gz", artB)
	h := newHarness(t, target(digestOf(artA), urlA), func(c *Config) { c.MaxArtifactBytes = release.DefaultMaxBytes })
	h.open().limits.Timeout = time.Minute
	h.run()
	releases := filepath.Join(h.cfg.Workspace, sidecar.ReleasesDir)
	wait.Until(t, "A's extraction", 10*time.Second, func() bool {
		staging, _ := filepath.Glob(filepath.Join(releases, ".tmp-staging-*", "d001"))
		return len(staging) > 0
	})
	start := time.Now()
	h.annotate(target(digestOf(artB), urlB))
	wait.Until(t, "A's Apply to return", 10*time.Second, func() bool {
		return strings.Contains(h.logs.String(), `msg="download cancelled"`)
	})
	took := time.Since(start)
	t.Logf("A's Apply returned %s after B arrived", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("A's Apply returned %s after B arrived, want within 1 s", took.Round(time.Millisecond))
	}
	if r := mustParse(t, h.waitLines("REFRESH_OK", 1)[0]); r.Digest != digestOf(artB) {
		t.Fatalf("published %s, want B", r.Digest)
	}
	if l := h.logs.lines("REFRESH_FAIL"); len(l) != 0 {
		t.Errorf("a superseded Apply is not a failure: %q", l)
	}
	h.stop()
	assertOnly(t, releases, strings.TrimPrefix(digestOf(artB), "sha256:"))
}

// TestMaxRetries: after AETHER_MAX_RETRIES failures the fetcher stops
// downloading until the digest changes, even though polls keep coming.
func TestMaxRetries(t *testing.T) {
	srv := newArtifactServer(t)
	art := app(t, "v1")
	broken := srv.handle("/broken.tar.gz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	h := newHarness(t, target(digestOf(art), broken), func(c *Config) {
		c.FetchMode = FetchPoll
		c.FetchInterval = 10 * time.Millisecond
		c.MaxRetries = 3
	})
	f := h.open()
	h.run()
	lines := h.waitLines("REFRESH_FAIL", 3)
	time.Sleep(300 * time.Millisecond)
	if n := srv.count("/broken.tar.gz"); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	lines = h.logs.lines("REFRESH_FAIL")
	if len(lines) != 3 {
		t.Fatalf("lines %q", lines)
	}
	for i, line := range lines {
		r := mustParse(t, line)
		if r.Reason != refresh.ReasonHTTPStatus || r.Attempt != int64(i+1) || r.GaveUp != (i == 2) {
			t.Errorf("line %d %q: %+v", i, line, r)
		}
	}
	if got := value(t, f.metrics.ConsecutiveFailures); got != 3 {
		t.Errorf("consecutive failures = %v", got)
	}
	if n := strings.Count(h.logs.String(), "gave up"); n != 1 {
		t.Errorf("giving up logged %d times", n)
	}

	h.annotate(target(digestOf(art), srv.serve("/v1.tar.gz", art)))
	h.waitLines("REFRESH_OK", 1)
	if got := value(t, f.metrics.ConsecutiveFailures); got != 0 {
		t.Errorf("consecutive failures after success = %v", got)
	}
}

// TestRetriesUnlimited: with AETHER_MAX_RETRIES=0 a failing artifact is
// retried, spaced by the backoff, until it is fixed.
func TestRetriesUnlimited(t *testing.T) {
	srv := newArtifactServer(t)
	art := app(t, "v1")
	url := srv.handle("/flaky.tar.gz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if srv.count("/flaky.tar.gz") <= 4 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(art)
	}))
	h := newHarness(t, target(digestOf(art), url), nil)
	h.run()
	h.waitLines("REFRESH_OK", 1)
	if n := len(h.logs.lines("REFRESH_FAIL")); n != 4 {
		t.Errorf("%d failures before success, want 4", n)
	}
}

// TestFinalFailureNotRetried: with retries unlimited, a failure that
// trying again cannot fix (a malformed digest) is reported once, as given
// up, and the next resyncs do nothing until the annotation changes.
func TestFinalFailureNotRetried(t *testing.T) {
	srv := newArtifactServer(t)
	art := app(t, "v1")
	url := srv.serve("/v1.tar.gz", art)
	h := newHarness(t, target("sha256:NOT-HEX", url), func(c *Config) {
		c.MaxRetries = 0
		c.FetchInterval = 20 * time.Millisecond
	})
	h.run()
	if r := mustParse(t, h.waitLines("REFRESH_FAIL", 1)[0]); r.Reason != refresh.ReasonBadAnnotation || !r.GaveUp {
		t.Fatalf("record %+v, want bad_annotation, given up", r)
	}
	time.Sleep(200 * time.Millisecond) // ten resyncs
	if l := h.logs.lines("REFRESH_FAIL"); len(l) != 1 {
		t.Errorf("REFRESH_FAIL lines %q, want one", l)
	}
	h.annotate(target(digestOf(art), url))
	h.waitLines("REFRESH_OK", 1)
}
