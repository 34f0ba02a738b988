package node_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// appDir holds the test app that every artifact carries.
const appDir = "../testdata/app"

// harness runs the real `node --watch .aether/boot.cjs` on a workspace that
// the test publishes to, with an artifact server on loopback.
type harness struct {
	tb       testing.TB
	ws       *release.Workspace
	srv      *httptest.Server
	fetch    *http.Client
	app      *http.Client
	appURL   string
	stateDir string
	out      *syncBuffer
	files    map[string][]byte

	mu    sync.Mutex
	blobs map[string][]byte
}

type answer struct {
	Version int `json:"version"`
	PID     int `json:"pid"`
	Starts  int `json:"starts"`
}

// newHarness publishes version 1 and starts node, which is how the pod
// starts the app only after the first release is live.
func newHarness(tb testing.TB) *harness {
	tb.Helper()
	requireNode(tb)
	h := &harness{tb: tb, stateDir: tb.TempDir(), blobs: map[string][]byte{}, files: map[string][]byte{}, out: &syncBuffer{}}
	entries, err := os.ReadDir(appDir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(appDir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		h.files[e.Name()] = b
	}
	if h.ws, err = release.Open(tb.TempDir()); err != nil {
		tb.Fatal(err)
	}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		b, ok := h.blobs[r.URL.Path]
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	tb.Cleanup(h.srv.Close)
	if h.fetch, err = release.NewHTTPClient(""); err != nil {
		tb.Fatal(err)
	}
	// A new connection per request, so that a restart shows up as refused
	// connections rather than hiding behind a kept-alive one.
	h.app = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}

	if _, err := h.apply(h.artifact(1)); err != nil {
		tb.Fatal(err)
	}
	port := freePort(tb)
	h.appURL = "http://127.0.0.1:" + port + "/"
	cmd := exec.Command("node", "--watch", filepath.Join(h.ws.Dir(), sidecar.BootFile))
	cmd.Env = append(os.Environ(), sidecar.EnvEntry+"=server.js", "PORT="+port, "APP_STATE_DIR="+h.stateDir)
	cmd.Stdout, cmd.Stderr = h.out, h.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		// node --watch forwards SIGTERM to the app; the group covers both.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if tb.Failed() {
			tb.Logf("node output:\n%s", h.out.String())
		}
	})
	if _, err := h.waitVersion(1, 10*time.Second); err != nil {
		tb.Fatal(err)
	}
	return h
}

// artifact builds and serves version v of the app.
func (h *harness) artifact(v int) annotations.Target {
	h.tb.Helper()
	return h.slowArtifact(v, 0)
}

// slowArtifact builds and serves version v of an app that takes startDelay
// to load.
func (h *harness) slowArtifact(v int, startDelay time.Duration) annotations.Target {
	h.tb.Helper()
	files := map[string][]byte{"version.json": fmt.Appendf(nil, `{"version":%d,"startDelayMs":%d}`, v, startDelay.Milliseconds())}
	return h.serve(fmt.Sprintf("/app-%d.tgz", v), files)
}

// serve builds an artifact of the app's files and files, serves it at
// path, and returns its target.
func (h *harness) serve(path string, files map[string][]byte) annotations.Target {
	h.tb.Helper()
	for name, b := range h.files {
		files[name] = b
	}
	b := tgz(h.tb, files)
	sum := sha256.Sum256(b)
	h.mu.Lock()
	h.blobs[path] = b
	h.mu.Unlock()
	tg, err := annotations.ParseTarget("sha256:"+hex.EncodeToString(sum[:]), h.srv.URL+path)
	if err != nil {
		h.tb.Fatal(err)
	}
	return tg
}

func (h *harness) apply(tg annotations.Target) (release.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.ws.Apply(ctx, h.fetch, tg, release.Limits{})
}

func (h *harness) get() (answer, error) {
	var a answer
	resp, err := h.app.Get(h.appURL)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	return a, json.NewDecoder(resp.Body).Decode(&a)
}

// waitVersion polls the app until it answers with version v.
func (h *harness) waitVersion(v int, timeout time.Duration) (answer, error) {
	deadline := time.Now().Add(timeout)
	var last answer
	var lastErr error
	for time.Now().Before(deadline) {
		a, err := h.get()
		if err == nil && a.Version == v {
			return a, nil
		}
		last, lastErr = a, err
		time.Sleep(2 * time.Millisecond)
	}
	return last, fmt.Errorf("version %d not answering after %v; last answer %+v, error %v", v, timeout, last, lastErr)
}

// starts counts the app's starts from its state file.
func (h *harness) starts() int {
	b, err := os.ReadFile(filepath.Join(h.stateDir, "starts"))
	if err != nil {
		h.tb.Fatal(err)
	}
	return len(strings.Split(strings.TrimSpace(string(b)), "\n"))
}

// gapMeter polls the app every few milliseconds on its own and records the
// longest stretch without an answer.
type gapMeter struct {
	mu      sync.Mutex
	max     time.Duration
	gaps    int
	refused int
	stop    chan struct{}
	done    chan struct{}
}

func (h *harness) measureGaps() *gapMeter {
	g := &gapMeter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		var since time.Time
		for {
			select {
			case <-g.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			_, err := h.get()
			now := time.Now()
			g.mu.Lock()
			switch {
			case err != nil && since.IsZero():
				since = now
				g.gaps++
				fallthrough
			case err != nil:
				if errors.Is(err, syscall.ECONNREFUSED) {
					g.refused++
				}
			case !since.IsZero():
				g.max = max(g.max, now.Sub(since))
				since = time.Time{}
			}
			g.mu.Unlock()
		}
	}()
	return g
}

func (g *gapMeter) finish() (maxGap time.Duration, gaps, refused int) {
	close(g.stop)
	<-g.done
	return g.max, g.gaps, g.refused
}

// waitLoaded waits until .aether/loaded shows digest ready, as the
// fetcher's health gate does without a probe, and returns how long that
// took. If no process has chosen digest within retouch it touches
// boot.cjs again (Node drops a touch that arrives mid-restart); 0 never
// touches.
func waitLoaded(ctx context.Context, ws *release.Workspace, digest string, retouch time.Duration) (time.Duration, error) {
	start := time.Now()
	lastTouch := start
	for {
		l, err := ws.Loaded()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return time.Since(start), err
		}
		if err == nil {
			ws.LearnAppDir(l.AppDir)
		}
		chosen := err == nil && l.Digest == digest
		if chosen && l.Ready {
			return time.Since(start), nil
		}
		if !chosen && retouch > 0 && time.Since(lastTouch) >= retouch {
			if err := ws.Touch(); err != nil {
				return time.Since(start), err
			}
			lastTouch = time.Now()
		}
		select {
		case <-ctx.Done():
			return time.Since(start), context.Cause(ctx)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// percentile returns the p-th percentile (0..100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func tgz(tb testing.TB, files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func freePort(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// syncBuffer collects node's output from two pipes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requireNode skips without node, or fails when AETHER_REQUIRE_NODE is set
// (make test sets it), so CI cannot pass by skipping.
func requireNode(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("AETHER_REQUIRE_NODE") != "" {
			tb.Fatal("node is not on PATH and AETHER_REQUIRE_NODE is set: install Node.js 20")
		}
		tb.Skip("node is not on PATH; these tests need a real node --watch")
	}
}

// deltaArtifact builds version v of the app as a delta release (package
// manifest): its root, parts and files served by sha256 under /delta/,
// each the sibling of the root as the store serves them; lie, when not
// "", is a file whose served bytes are not what the manifest says.
func (h *harness) deltaArtifact(v int, lie string) annotations.Target {
	h.tb.Helper()
	files := map[string][]byte{
		"version.json": fmt.Appendf(nil, `{"version":%d,"startDelayMs":0}`, v),
		// A file the app never loads, which node --watch does not watch.
		"assets/readme.txt": []byte("not loaded\n"),
	}
	for name, b := range h.files {
		files[name] = b
	}
	var entries []manifest.Entry
	for _, name := range slices.Sorted(maps.Keys(files)) {
		sum := sha256.Sum256(files[name])
		e := manifest.Entry{Path: name, Mode: manifest.ModeFile, Size: int64(len(files[name])), Hex: hex.EncodeToString(sum[:])}
		entries = append(entries, e)
		body := files[name]
		if name == lie {
			body = append([]byte("// not what the manifest says\n"), body...)
		}
		h.mu.Lock()
		h.blobs["/delta/"+e.Hex] = body
		h.mu.Unlock()
	}
	root, parts, err := manifest.Build(entries)
	if err != nil {
		h.tb.Fatal(err)
	}
	sum := sha256.Sum256(root)
	rootHex := hex.EncodeToString(sum[:])
	h.mu.Lock()
	h.blobs["/delta/"+rootHex] = root
	for _, p := range parts {
		h.blobs["/delta/"+p.Hex] = p.Data
	}
	h.mu.Unlock()
	tg, err := annotations.ParseTarget("sha256:"+rootHex, h.srv.URL+"/delta/"+rootHex)
	if err != nil {
		h.tb.Fatal(err)
	}
	return tg
}
