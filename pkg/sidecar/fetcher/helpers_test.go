package fetcher

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

const (
	testNamespace  = "ns"
	testDeployment = "app"
	testPod        = "app-7d9f-x2x"
)

// entry is one tar entry of a test artifact.
type entry = artifact.Entry

var (
	file     = artifact.File
	special  = artifact.Special
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

// app is a small valid artifact that says version v.
func app(t testing.TB, v string) []byte {
	return tgz(t, file("server.js", "console.log('"+v+"')\n"), file("version.txt", v))
}

// artifactServer serves artifacts on loopback and counts requests per path.
type artifactServer struct {
	*httptest.Server
	mu       sync.Mutex
	handlers map[string]http.Handler
	hits     map[string]int
}

func newArtifactServer(t *testing.T) *artifactServer {
	a := &artifactServer{handlers: map[string]http.Handler{}, hits: map[string]int{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.hits[r.URL.Path]++
		h := a.handlers[r.URL.Path]
		a.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

// handle serves path with h and returns its URL.
func (a *artifactServer) handle(path string, h http.Handler) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.handlers[path] = h
	return a.URL + path
}

// serve serves b at path and returns its URL.
func (a *artifactServer) serve(path string, b []byte) string {
	return a.handle(path, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(b)
	}))
}

func (a *artifactServer) count(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hits[path]
}

func (a *artifactServer) total() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, v := range a.hits {
		n += v
	}
	return n
}

// logBuffer is the fetcher's output, safe to read while it writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines that start with prefix.
func (l *logBuffer) lines(prefix string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.Lines(l.b.String()) {
		if strings.HasPrefix(line, prefix) {
			out = append(out, strings.TrimSuffix(line, "\n"))
		}
	}
	return out
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mustParse reads a REFRESH_* line with the readers' own parser.
func mustParse(t *testing.T, line string) refresh.Record {
	t.Helper()
	r, ok := refresh.Parse(line)
	if !ok || len(r.Malformed) > 0 {
		t.Fatalf("line %q is not a well-formed refresh record: %+v", line, r)
	}
	return r
}

func deployment(a map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
		Namespace: testNamespace, Name: testDeployment, UID: "uid-1", Annotations: a,
	}}
}

func target(digest, url string) map[string]string {
	return map[string]string{annotations.Digest: digest, annotations.ArtifactURL: url}
}

// harness runs a Fetcher against a fake clientset, on a workspace alone in
// its own temp dir so that tests can prove nothing is written beside it.
type harness struct {
	t      *testing.T
	parent string
	cfg    Config
	client *fake.Clientset
	logs   *logBuffer
	f      *Fetcher
	stop   func()
}

func newHarness(t *testing.T, a map[string]string, edit func(*Config)) *harness {
	t.Helper()
	parent := t.TempDir()
	h := &harness{
		t:      t,
		parent: parent,
		cfg: Config{
			PodName:          testPod,
			PodNamespace:     testNamespace,
			Deployment:       testDeployment,
			Workspace:        filepath.Join(parent, "ws"),
			FetchInterval:    time.Second,
			FetchMode:        FetchWatch,
			BackoffMax:       20 * time.Millisecond,
			MaxArtifactBytes: 1 << 20,
			MetricsAddr:      "127.0.0.1:0",
		},
		client: fake.NewClientset(deployment(a)),
		logs:   &logBuffer{},
		stop:   func() {},
	}
	if edit != nil {
		edit(&h.cfg)
	}
	return h
}

// open creates the Fetcher without running it.
func (h *harness) open() *Fetcher {
	h.t.Helper()
	f, err := New(h.cfg, h.client, h.logs)
	if err != nil {
		h.t.Fatal(err)
	}
	f.backoff.Base = 2 * time.Millisecond
	f.limits.Timeout = 2 * time.Second
	h.f = f
	return f
}

// run runs the Fetcher (opening it first if needed) until the test ends
// or stop is called.
func (h *harness) run() {
	h.t.Helper()
	if h.f == nil {
		h.open()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.f.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				h.t.Error("Run did not return after cancel")
			}
		})
	}
	h.t.Cleanup(h.stop)
}

// annotate replaces the Deployment's annotations, as kubectl annotate would.
func (h *harness) annotate(a map[string]string) {
	h.t.Helper()
	d, err := h.client.AppsV1().Deployments(testNamespace).Get(context.Background(), testDeployment, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	d.Annotations = a
	if _, err := h.client.AppsV1().Deployments(testNamespace).Update(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// waitLines waits for at least n lines starting with prefix and returns them.
func (h *harness) waitLines(prefix string, n int) []string {
	h.t.Helper()
	wait.Until(h.t, "log lines "+prefix, 10*time.Second, func() bool { return len(h.logs.lines(prefix)) >= n })
	return h.logs.lines(prefix)
}

// events returns the Events the fetcher created.
func (h *harness) events() []*eventsv1.Event {
	var out []*eventsv1.Event
	for _, a := range h.client.Actions() {
		if c, ok := a.(k8stesting.CreateAction); ok && a.GetResource().Resource == "events" {
			out = append(out, c.GetObject().(*eventsv1.Event))
		}
	}
	return out
}

// waitEvent waits for an Event with reason and returns it.
func (h *harness) waitEvent(reason string) *eventsv1.Event {
	h.t.Helper()
	var found *eventsv1.Event
	wait.Until(h.t, "event "+reason, 10*time.Second, func() bool {
		for _, e := range h.events() {
			if e.Reason == reason {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// preload publishes b into the workspace before the fetcher starts, as an
// earlier run of the fetcher would have.
func preload(t *testing.T, workspace, url string, b []byte) string {
	t.Helper()
	ws, err := release.Open(workspace)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := annotations.ParseTarget(digestOf(b), url)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := release.NewHTTPClient("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Apply(context.Background(), hc, tg, release.Limits{}); err != nil {
		t.Fatal(err)
	}
	return tg.Digest
}
