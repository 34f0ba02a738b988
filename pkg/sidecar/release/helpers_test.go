package release_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
)

// entry is one tar entry of a test artifact.
type entry = artifact.Entry

var (
	file     = artifact.File
	dir      = artifact.Dir
	digestOf = digest.Of
)

// tgz builds a .tar.gz from entries exactly as given, however malicious.
func tgz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	b, err := artifact.Build(entries...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// app is a small valid artifact whose version.txt says v.
func app(t testing.TB, v string) []byte {
	return tgz(t, dir("lib/"), file("server.js", "require('./lib/x')\n"), file("lib/x.js", "module.exports = 1\n"), file("version.txt", v))
}

// fixture is a workspace alone in its own temp dir, plus an artifact server.
type fixture struct {
	t      *testing.T
	parent string
	dir    string
	ws     *release.Workspace
	srv    *httptest.Server
	client *http.Client

	mu    sync.Mutex
	blobs map[string][]byte
	hits  map[string]int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	parent := t.TempDir()
	return fixtureAt(t, parent, filepath.Join(parent, "ws"))
}

// fixtureAt is newFixture with the workspace at dir, in parent.
func fixtureAt(t *testing.T, parent, dir string) *fixture {
	t.Helper()
	f := &fixture{t: t, parent: parent, dir: dir, blobs: map[string][]byte{}, hits: map[string]int{}}
	ws, err := release.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	f.ws = ws
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		b, ok := f.blobs[r.URL.Path]
		f.hits[r.URL.Path]++
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(f.srv.Close)
	f.client, err = release.NewHTTPClient("")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// serve publishes b at path on the artifact server and returns its URL.
func (f *fixture) serve(path string, b []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blobs[path] = b
	return f.srv.URL + path
}

func (f *fixture) requests(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

// target serves b and returns a Target with b's digest.
func (f *fixture) target(path string, b []byte) annotations.Target {
	f.t.Helper()
	return mustTarget(f.t, digestOf(b), f.serve(path, b))
}

func mustTarget(t testing.TB, digest, u string) annotations.Target {
	t.Helper()
	tg, err := annotations.ParseTarget(digest, u)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func (f *fixture) apply(tg annotations.Target, lim release.Limits) (release.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f.ws.Apply(ctx, f.client, tg, lim)
}

// publish applies a good artifact and fails the test if it is not live.
func (f *fixture) publish(path, version string) annotations.Target {
	f.t.Helper()
	tg := f.target(path, app(f.t, version))
	if _, err := f.apply(tg, release.Limits{}); err != nil {
		f.t.Fatalf("publish %s: %v", version, err)
	}
	if got := f.ws.Current(); got != tg.Digest {
		f.t.Fatalf("Current() = %q after publishing, want %q", got, tg.Digest)
	}
	return tg
}

// checkClean asserts the workspace invariants that every failure must keep:
// nothing outside the workspace, nothing in progress left behind, and only
// the expected names at the top.
func (f *fixture) checkClean() {
	f.t.Helper()
	f.wait()
	checkClean(f.t, f.parent, f.dir)
}

func checkClean(t testing.TB, parent, ws string) {
	t.Helper()
	err := filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != parent && p != ws && !strings.HasPrefix(p, ws+string(filepath.Separator)) {
			t.Errorf("written outside the workspace: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	top, err := os.ReadDir(ws)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range top {
		switch e.Name() {
		case sidecar.ReleasesDir, sidecar.CurrentLink, sidecar.StateDir, "manifests":
		default:
			t.Errorf("unexpected %s in the workspace", e.Name())
		}
	}
	rels, err := os.ReadDir(filepath.Join(ws, sidecar.ReleasesDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rels {
		if len(e.Name()) != 64 || !e.IsDir() {
			t.Errorf("leftover in releases/: %s", e.Name())
		}
	}
}

// hexOf strips the digest prefix.
func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

// hostAlias rewrites a loopback URL's host from 127.0.0.1 to localhost: the
// same server under another host name.
func hostAlias(t testing.TB, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = strings.Replace(u.Host, "127.0.0.1", "localhost", 1)
	return u.String()
}

// memTransport answers every request with body, without a network, so that
// fuzzing and benchmarks measure extraction only.
type memTransport struct{ body []byte }

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    http.StatusOK,
		Status:        "200 OK",
		Header:        http.Header{},
		Body:          io.NopCloser(bytes.NewReader(m.body)),
		ContentLength: int64(len(m.body)),
		Request:       r,
	}, nil
}

// wait waits for the removals that Apply left running in the background.
func (f *fixture) wait() {
	f.t.Helper()
	if err := f.ws.Wait(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}
