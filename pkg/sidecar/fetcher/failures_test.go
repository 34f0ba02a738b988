package fetcher

import (
	"archive/tar"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// failureCase makes one broken or malicious artifact and says which reason
// the whole loop must report for it.
type failureCase struct {
	name   string
	reason refresh.Reason
	// make returns the digest and artifact-url annotations; parent is the
	// directory that holds the workspace and must stay empty but for it.
	make func(t *testing.T, srv *artifactServer, parent string) (digest, url string)
	// tune adjusts the Fetcher before it runs.
	tune func(f *Fetcher)
}

// serveArtifact serves b and annotates its true digest.
func serveArtifact(b []byte) func(*testing.T, *artifactServer, string) (string, string) {
	return func(_ *testing.T, srv *artifactServer, _ string) (string, string) {
		return digestOf(b), srv.serve("/artifact.tar.gz", b)
	}
}

func failureCases(t *testing.T) []failureCase {
	good := app(t, "v1")
	truncated := good[:len(good)/2]
	return []failureCase{
		{"traversal", refresh.ReasonUnsafePath, serveArtifact(tgz(t, file("ok.js", "1"), file("../../../escaped", "evil"))), nil},
		{"absolute path", refresh.ReasonUnsafePath, func(t *testing.T, srv *artifactServer, parent string) (string, string) {
			b := tgz(t, file(filepath.Join(parent, "absolute"), "evil"))
			return digestOf(b), srv.serve("/abs.tar.gz", b)
		}, nil},
		{"symlink escape", refresh.ReasonUnsafePath, serveArtifact(tgz(t,
			special("up", tar.TypeSymlink, "../../.."), file("up/escaped", "evil"))), nil},
		{"hardlink", refresh.ReasonUnsafePath, serveArtifact(tgz(t,
			special("passwd", tar.TypeLink, "/etc/passwd"))), nil},
		{"device node", refresh.ReasonUnsupportedEntry, serveArtifact(tgz(t,
			entry{Header: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}})), nil},
		{"tar bomb over the byte cap", refresh.ReasonSizeLimit, serveArtifact(tgz(t,
			file("bomb", string(bytes.Repeat([]byte{0}, 256<<10))))), nil},
		{"too many entries", refresh.ReasonSizeLimit, serveArtifact(tgz(t,
			file("1", ""), file("2", ""), file("3", ""), file("4", ""), file("5", ""), file("6", ""))),
			func(f *Fetcher) { f.limits.MaxEntries = 5 }},
		{"wrong digest", refresh.ReasonChecksum, func(_ *testing.T, srv *artifactServer, _ string) (string, string) {
			return digestOf(app(t, "other")), srv.serve("/v1.tar.gz", good)
		}, nil},
		{"truncated gzip", refresh.ReasonExtract, serveArtifact(truncated), nil},
		{"404", refresh.ReasonHTTPStatus, func(_ *testing.T, srv *artifactServer, _ string) (string, string) {
			return digestOf(good), srv.URL + "/missing.tar.gz"
		}, nil},
		{"500", refresh.ReasonHTTPStatus, func(_ *testing.T, srv *artifactServer, _ string) (string, string) {
			return digestOf(good), srv.handle("/500.tar.gz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "boom", http.StatusInternalServerError)
			}))
		}, nil},
		{"server slower than the timeout", refresh.ReasonDownload, func(_ *testing.T, srv *artifactServer, _ string) (string, string) {
			return digestOf(good), srv.handle("/slow.tar.gz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(good[:10])
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}))
		}, func(f *Fetcher) { f.limits.Timeout = 200 * time.Millisecond }},
		{"malformed digest annotation", refresh.ReasonBadAnnotation, func(_ *testing.T, srv *artifactServer, _ string) (string, string) {
			return "sha256:NOT-HEX", srv.serve("/v1.tar.gz", good)
		}, nil},
		{"file URL", refresh.ReasonBadAnnotation, func(_ *testing.T, _ *artifactServer, parent string) (string, string) {
			p := filepath.Join(parent, "..", "local.tar.gz")
			return digestOf(good), "file://" + p
		}, nil},
		{"cross-host redirect", refresh.ReasonDownload, func(t *testing.T, srv *artifactServer, _ string) (string, string) {
			other := newArtifactServer(t)
			elsewhere := other.serve("/v1.tar.gz", good)
			return digestOf(good), srv.handle("/redirect.tar.gz", http.RedirectHandler(elsewhere, http.StatusFound))
		}, nil},
	}
}

// TestFailureReasons drives each broken artifact through the whole loop
// and checks what an operator sees: the exact REFRESH_FAIL line, the metric,
// the Event, the previous release still live and nothing written outside the
// workspace.
func TestFailureReasons(t *testing.T) {
	for _, tc := range failureCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			srv := newArtifactServer(t)
			h := newHarness(t, nil, func(c *Config) {
				c.MaxRetries = 1
				c.MaxArtifactBytes = 64 << 10
			})
			prevArt := app(t, "previous")
			prev := preload(t, h.cfg.Workspace, srv.serve("/previous.tar.gz", prevArt), prevArt)
			digest, url := tc.make(t, srv, h.parent)
			h.annotate(target(digest, url))
			f := h.open()
			if tc.tune != nil {
				tc.tune(f)
			}
			h.run()

			line := h.waitLines("REFRESH_FAIL", 1)[0]
			if r := mustParse(t, line); r.Reason != tc.reason || r.Digest != digest || r.Attempt != 1 || !r.GaveUp {
				t.Errorf("line %q, want reason=%s digest=%s attempt=1 and no retry", line, tc.reason, digest)
			}
			t.Log(line)

			for _, r := range reasons {
				want := 0.0
				if r == tc.reason {
					want = 1
				}
				if got := value(t, f.metrics.Failures.WithLabelValues(string(r))); got != want {
					t.Errorf(`dev_hot_refresh_failure_total{reason=%q} = %v, want %v`, r, got, want)
				}
			}
			if got := value(t, f.metrics.ConsecutiveFailures); got != 1 {
				t.Errorf("consecutive failures = %v", got)
			}

			ev := h.waitEvent(refresh.EventFailed)
			rec, pod, ok := refresh.FromEvent(ev)
			if ev.Type != corev1.EventTypeWarning || !ok || rec.Reason != tc.reason || pod != testPod || !strings.Contains(ev.Note, string(tc.reason)) {
				t.Errorf("event %s %q: %+v from %s", ev.Type, ev.Note, rec, pod)
			}

			if got := f.ws.Current(); got != prev {
				t.Errorf("current = %q, want the previous release %q", got, prev)
			}
			if code, _ := get(t, f.handler(), "/readyz"); code != http.StatusOK {
				t.Errorf("/readyz = %d with the previous release live", code)
			}
			h.stop()
			assertOnly(t, h.parent, "ws")
			assertOnly(t, filepath.Join(h.cfg.Workspace, sidecar.ReleasesDir), prev[len("sha256:"):])
		})
	}
}

// assertOnly fails unless dir holds exactly the named entries.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(names) {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}
