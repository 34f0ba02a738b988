package release_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// TestApplyFailures runs one real broken or malicious artifact per failure
// reason. Each must fail with its reason, leave the previous release live,
// write nothing outside the workspace and leave no staging directory.
func TestApplyFailures(t *testing.T) {
	zeros := func(n int) string { return string(make([]byte, n)) }
	type setup struct {
		f   *fixture
		lim *release.Limits
	}
	cases := []struct {
		name string
		want refresh.Reason
		// artifact builds what the server serves; the digest is its sha256
		// unless digest overrides it.
		artifact func(t *testing.T) []byte
		digest   string
		// url overrides where the artifact is fetched from.
		url func(s setup, artifactURL string) string
		lim release.Limits
	}{
		{
			name: "traversal", want: refresh.ReasonUnsafePath,
			artifact: func(t *testing.T) []byte { return tgz(t, file("ok.js", "1"), file("../x", "evil")) },
		},
		{
			name: "deep traversal", want: refresh.ReasonUnsafePath,
			artifact: func(t *testing.T) []byte { return tgz(t, file("a/../../../../../evil", "evil")) },
		},
		{
			name: "absolute path", want: refresh.ReasonUnsafePath,
			artifact: func(t *testing.T) []byte { return tgz(t, file("/tmp/aether-evil", "evil")) },
		},
		{
			name: "symlink escape", want: refresh.ReasonUnsafePath,
			artifact: func(t *testing.T) []byte {
				link := entry{Header: tar.Header{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../../..", Mode: 0o777}}
				return tgz(t, link, file("up/evil", "evil"))
			},
		},
		{
			name: "hardlink", want: refresh.ReasonUnsafePath,
			artifact: func(t *testing.T) []byte {
				return tgz(t, entry{Header: tar.Header{Name: "passwd", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}})
			},
		},
		{
			name: "char device", want: refresh.ReasonUnsupportedEntry,
			artifact: func(t *testing.T) []byte {
				return tgz(t, entry{Header: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}})
			},
		},
		{
			name: "fifo", want: refresh.ReasonUnsupportedEntry,
			artifact: func(t *testing.T) []byte {
				return tgz(t, entry{Header: tar.Header{Name: "pipe", Typeflag: tar.TypeFifo, Mode: 0o644}})
			},
		},
		{
			name: "tar bomb over the byte cap", want: refresh.ReasonSizeLimit,
			artifact: func(t *testing.T) []byte { return tgz(t, file("big", zeros(2<<20))) },
			lim:      release.Limits{MaxBytes: 1 << 20},
		},
		{
			name: "many small files over the byte cap", want: refresh.ReasonSizeLimit,
			artifact: func(t *testing.T) []byte {
				var es []entry
				for i := range 40 {
					es = append(es, file("f"+strings.Repeat("x", i), zeros(32<<10)))
				}
				return tgz(t, es...)
			},
			lim: release.Limits{MaxBytes: 1 << 20},
		},
		{
			name: "gzip bomb over the ratio", want: refresh.ReasonSizeLimit,
			artifact: func(t *testing.T) []byte { return tgz(t, file("big", zeros(16<<20))) },
		},
		{
			name: "download over the byte cap", want: refresh.ReasonSizeLimit,
			artifact: func(t *testing.T) []byte { return bytes.Repeat([]byte("x"), 64<<10) },
			lim:      release.Limits{MaxBytes: 32 << 10},
		},
		{
			name: "too many entries", want: refresh.ReasonSizeLimit,
			artifact: func(t *testing.T) []byte {
				var es []entry
				for i := range 11 {
					es = append(es, file(strings.Repeat("f", i+1), "x"))
				}
				return tgz(t, es...)
			},
			lim: release.Limits{MaxEntries: 10},
		},
		{
			// Empty, but each takes an inode and a block.
			name: "empty files over the byte cap", want: refresh.ReasonSizeLimit,
			artifact: func(t *testing.T) []byte { return emptyFiles(t, 300) },
			lim:      release.Limits{MaxBytes: 1 << 20},
		},
		{
			name: "deep directories over the byte cap", want: refresh.ReasonSizeLimit,
			artifact: func(t *testing.T) []byte { return deepDirs(t, 1900, 46) },
			lim:      release.Limits{MaxBytes: 1 << 20},
		},
		{
			name: "path deeper than the cap", want: refresh.ReasonSizeLimit,
			artifact: func(t *testing.T) []byte { return deepPath(t, release.MaxPathDepth) },
		},
		{
			name: "path longer than the cap", want: refresh.ReasonSizeLimit,
			artifact: func(t *testing.T) []byte {
				return tgz(t, file(strings.Repeat(strings.Repeat("l", 99)+"/", 11)+"long.js", "1"))
			},
		},
		{
			name: "name longer than the kernel allows", want: refresh.ReasonSizeLimit,
			artifact: func(t *testing.T) []byte { return tgz(t, file(strings.Repeat("n", release.MaxNameBytes+1), "1")) },
		},
		{
			name: "wrong digest", want: refresh.ReasonChecksum,
			artifact: func(t *testing.T) []byte { return app(t, "other") },
			digest:   digestOf([]byte("something else")),
		},
		{
			name: "malicious and wrong digest", want: refresh.ReasonChecksum,
			artifact: func(t *testing.T) []byte { return tgz(t, file("../x", "evil"), file("pad", zeros(1<<10))) },
			digest:   digestOf([]byte("something else")),
		},
		{
			name: "truncated gzip", want: refresh.ReasonExtract,
			artifact: func(t *testing.T) []byte { b := app(t, "x"); return b[:len(b)/2] },
		},
		{
			name: "not gzip", want: refresh.ReasonExtract,
			artifact: func(t *testing.T) []byte { return []byte("<html>not found</html>") },
		},
		{
			name: "404", want: refresh.ReasonHTTPStatus,
			artifact: func(t *testing.T) []byte { return app(t, "x") },
			url:      func(s setup, u string) string { return u + ".missing" },
		},
		{
			name: "500", want: refresh.ReasonHTTPStatus,
			artifact: func(t *testing.T) []byte { return app(t, "x") },
			url: func(s setup, u string) string {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, "boom", http.StatusInternalServerError)
				}))
				s.f.t.Cleanup(srv.Close)
				return srv.URL + "/a.tgz"
			},
		},
		{
			name: "server slower than the timeout", want: refresh.ReasonDownload,
			artifact: func(t *testing.T) []byte { return app(t, "x") },
			url: func(s setup, u string) string {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", "100000")
					w.Write(make([]byte, 100))
					w.(http.Flusher).Flush()
					<-r.Context().Done()
				}))
				s.f.t.Cleanup(srv.Close)
				return srv.URL + "/a.tgz"
			},
			lim: release.Limits{Timeout: 200 * time.Millisecond},
		},
		{
			name: "connection refused", want: refresh.ReasonDownload,
			artifact: func(t *testing.T) []byte { return app(t, "x") },
			url: func(s setup, u string) string {
				srv := httptest.NewServer(http.NotFoundHandler())
				srv.Close()
				return srv.URL + "/a.tgz"
			},
		},
		{
			name: "cross-host redirect", want: refresh.ReasonDownload,
			artifact: func(t *testing.T) []byte { return app(t, "x") },
			url: func(s setup, u string) string {
				// The artifact server is reachable as localhost too; only the
				// host name differs.
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, hostAlias(s.f.t, u), http.StatusFound)
				}))
				s.f.t.Cleanup(srv.Close)
				return srv.URL + "/a.tgz"
			},
		},
		{
			name: "redirect to another port", want: refresh.ReasonDownload,
			artifact: func(t *testing.T) []byte { return app(t, "x") },
			url: func(s setup, u string) string {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, u, http.StatusFound)
				}))
				s.f.t.Cleanup(srv.Close)
				return srv.URL + "/a.tgz"
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			prev := f.publish("/prev.tgz", "prev")

			b := tc.artifact(t)
			u := f.serve("/a.tgz", b)
			if tc.url != nil {
				u = tc.url(setup{f: f, lim: &tc.lim}, u)
			}
			digest := tc.digest
			if digest == "" {
				digest = digestOf(b)
			}
			tg, err := annotations.ParseTarget(digest, u)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.apply(tg, tc.lim)
			if err == nil {
				t.Fatal("no error")
			}
			var rerr *release.Error
			if !errors.As(err, &rerr) {
				t.Fatalf("error %v is %T, want *release.Error", err, err)
			}
			if got := release.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q, want %q; error: %v", got, tc.want, err)
			}
			t.Logf("%v", err)
			if got := f.ws.Current(); got != prev.Digest {
				t.Errorf("Current() = %q, want the previous %q", got, prev.Digest)
			}
			if _, err := os.Stat(filepath.Join(f.dir, sidecar.ReleasesDir, hexOf(digest))); err == nil && digest != prev.Digest {
				t.Errorf("the failed release is on disk")
			}
			f.checkClean()
		})
	}
}

func TestPublishKeepsLastThree(t *testing.T) {
	f := newFixture(t)
	boot := filepath.Join(f.dir, sidecar.BootFile)
	before, err := os.Stat(boot)
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for i, v := range []string{"1", "2", "3", "4", "5"} {
		tg := f.publish("/v"+v+".tgz", v)
		digests = append(digests, tg.Digest)

		link, err := os.Readlink(filepath.Join(f.dir, sidecar.CurrentLink))
		if err != nil {
			t.Fatal(err)
		}
		if want := sidecar.ReleasesDir + "/" + tg.Hex; link != want {
			t.Errorf("current -> %q, want the relative %q", link, want)
		}
		if got, err := os.ReadFile(filepath.Join(f.dir, sidecar.CurrentLink, "version.txt")); err != nil || string(got) != v {
			t.Errorf("current/version.txt = %q, %v; want %q", got, err, v)
		}
		after, err := os.Stat(boot)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(before, after) {
			t.Fatalf("publish %d replaced boot.cjs; node --watch would lose it", i)
		}
		if !after.ModTime().After(before.ModTime()) {
			t.Errorf("publish %d: boot.cjs mtime %v did not advance past %v", i, after.ModTime(), before.ModTime())
		}
		before = after
	}
	f.wait()
	entries, err := os.ReadDir(filepath.Join(f.dir, sidecar.ReleasesDir))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, e := range entries {
		kept = append(kept, "sha256:"+e.Name())
	}
	want := digests[2:]
	if len(kept) != len(want) {
		t.Fatalf("kept %v, want the last three %v", kept, want)
	}
	for _, d := range want {
		if !strings.Contains(strings.Join(kept, " "), d) {
			t.Errorf("release %s was pruned, want kept", d)
		}
	}
	f.checkClean()

	reopened, err := release.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := reopened.Current(); got != digests[4] {
		t.Errorf("Current() after reopening = %q, want %q", got, digests[4])
	}
	if after, err := os.Stat(boot); err != nil || !os.SameFile(before, after) {
		t.Errorf("Open replaced boot.cjs")
	}
}

// TestRepublishKeptRelease rolls back to a release still on disk: no
// download, and it becomes the newest so the prune keeps it.
func TestRepublishKeptRelease(t *testing.T) {
	f := newFixture(t)
	a := f.publish("/a.tgz", "a")
	f.publish("/b.tgz", "b")
	res, err := f.apply(a, release.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if f.requests("/a.tgz") != 1 || res.Downloaded != 0 {
		t.Errorf("rollback downloaded again: %d requests, %d bytes", f.requests("/a.tgz"), res.Downloaded)
	}
	if res.Files != 3 || res.Bytes == 0 {
		t.Errorf("result %+v, want 3 files", res)
	}
	if got := f.ws.Current(); got != a.Digest {
		t.Errorf("Current() = %q, want %q", got, a.Digest)
	}
	f.publish("/c.tgz", "c")
	f.publish("/d.tgz", "d")
	if _, err := os.Stat(filepath.Join(f.dir, sidecar.ReleasesDir, a.Hex)); err != nil {
		t.Errorf("the republished release was pruned before older ones: %v", err)
	}
}

// TestApplyLiveDigest applies the digest that is already live: no
// download and no touch, so the app does not restart (H2).
func TestApplyLiveDigest(t *testing.T) {
	f := newFixture(t)
	a := f.publish("/a.tgz", "a")
	boot := filepath.Join(f.dir, sidecar.BootFile)
	before, err := os.Stat(boot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.apply(a, release.Limits{}); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(boot)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || f.requests("/a.tgz") != 1 {
		t.Errorf("applying the live digest touched boot.cjs or downloaded again")
	}
}

func TestApplyZeroTarget(t *testing.T) {
	f := newFixture(t)
	prev := f.publish("/a.tgz", "a")
	if _, err := f.apply(annotations.Target{}, release.Limits{}); release.ReasonOf(err) != refresh.ReasonBadAnnotation {
		t.Errorf("zero Target: %v, want reason bad_annotation", err)
	}
	if got := f.ws.Current(); got != prev.Digest {
		t.Errorf("Current() = %q, want %q", got, prev.Digest)
	}
}

func TestApplyResult(t *testing.T) {
	f := newFixture(t)
	b := app(t, "v1")
	res, err := f.apply(f.target("/a.tgz", b), release.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := release.Result{Digest: digestOf(b), Bytes: int64(len("require('./lib/x')\n") + len("module.exports = 1\n") + 2), Files: 3, Downloaded: int64(len(b)), Source: refresh.SourceArchive}
	if res != want {
		t.Errorf("Result = %+v, want %+v", res, want)
	}
}

// TestPermissionsNormalised makes sure an app under another uid can read
// every file whatever the artifact's modes and the fetcher's umask.
func TestPermissionsNormalised(t *testing.T) {
	old := setUmask(0o077)
	defer setUmask(old)
	f := newFixture(t)
	b := tgz(t,
		entry{Header: tar.Header{Name: "private/", Typeflag: tar.TypeDir, Mode: 0o700}},
		entry{Header: tar.Header{Name: "private/secret.js", Typeflag: tar.TypeReg, Mode: 0o600, Size: 1}, Body: []byte("1")},
		entry{Header: tar.Header{Name: "bin/run", Typeflag: tar.TypeReg, Mode: 0o700, Size: 1}, Body: []byte("1")},
		entry{Header: tar.Header{Name: "./implicit/parent/file.js", Typeflag: tar.TypeReg, Mode: 0o444, Size: 1}, Body: []byte("1")},
	)
	tg := f.target("/a.tgz", b)
	if _, err := f.apply(tg, release.Limits{}); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(f.dir, sidecar.ReleasesDir, tg.Hex)
	want := map[string]os.FileMode{
		".":                         0o755,
		"private":                   0o755,
		"private/secret.js":         0o644,
		"bin":                       0o755,
		"bin/run":                   0o755,
		"implicit":                  0o755,
		"implicit/parent":           0o755,
		"implicit/parent/file.js":   0o644,
		"../../" + sidecar.StateDir: os.ModeSticky | 0o777,
		"../../" + sidecar.BootFile: 0o644,
	}
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if got := fi.Mode() & (os.ModePerm | os.ModeSticky); got != mode {
			t.Errorf("%s: mode %v, want %v", name, got, mode)
		}
	}
}

// TestCancel supersedes a download in flight: nothing is published and the
// staging directory is gone when Apply returns.
func TestCancel(t *testing.T) {
	f := newFixture(t)
	prev := f.publish("/prev.tgz", "prev")
	started := make(chan struct{})
	b := app(t, "slow")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	}))
	defer srv.Close()
	tg := mustTarget(t, digestOf(b), srv.URL+"/a.tgz")

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	_, err := f.ws.Apply(ctx, f.client, tg, release.Limits{})
	if release.ReasonOf(err) != refresh.ReasonDownload || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want a download error wrapping context.Canceled", err)
	}
	if got := f.ws.Current(); got != prev.Digest {
		t.Errorf("Current() = %q, want %q", got, prev.Digest)
	}
	f.checkClean()
}

// TestPublishFailureRollsBack removes boot.cjs so the touch fails: current
// must point back at the release the app still runs.
func TestPublishFailureRollsBack(t *testing.T) {
	f := newFixture(t)
	prev := f.publish("/prev.tgz", "prev")
	if err := os.Remove(filepath.Join(f.dir, sidecar.BootFile)); err != nil {
		t.Fatal(err)
	}
	_, err := f.apply(f.target("/a.tgz", app(t, "next")), release.Limits{})
	if release.ReasonOf(err) != refresh.ReasonPublish {
		t.Fatalf("error %v, want reason publish", err)
	}
	if got := f.ws.Current(); got != prev.Digest {
		t.Errorf("Current() = %q, want %q", got, prev.Digest)
	}
}

func TestOpenRemovesLeftovers(t *testing.T) {
	f := newFixture(t)
	f.publish("/a.tgz", "a")
	for _, p := range []string{
		filepath.Join(sidecar.ReleasesDir, ".tmp-staging-123", "x.js"),
		filepath.Join(sidecar.ReleasesDir, ".tmp-prune-abc", "y.js"),
		".tmp-current",
	} {
		p = filepath.Join(f.dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := release.Open(f.dir); err != nil {
		t.Fatal(err)
	}
	f.checkClean()
}

func TestCurrentEmpty(t *testing.T) {
	ws, err := release.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := ws.Current(); got != "" {
		t.Errorf("Current() = %q on a new workspace", got)
	}
	if ws.Dir() == "" || !filepath.IsAbs(ws.Dir()) {
		t.Errorf("Dir() = %q, want an absolute path", ws.Dir())
	}
	boot, err := os.ReadFile(filepath.Join(ws.Dir(), sidecar.BootFile))
	if err != nil || !bytes.Contains(boot, []byte("AETHER_ENTRY")) {
		t.Errorf("boot.cjs not written: %v", err)
	}
}
