package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// gz compresses s: a body the store accepts as gzip.
func gz(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sized is a gzip header followed by filler, n bytes in all: the store
// checks only the header, so it stands for an archive of that size.
func sized(i, n int) []byte {
	b := append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, bytes.Repeat([]byte{byte('a' + i%26)}, n)...)
	b[4] = byte(i) // distinct digests for distinct i
	return b[:n]
}

// fakeAccess is the unit tests' Access: tokens that may read one
// namespace's Deployment, and the digests each Deployment asks for.
type fakeAccess struct {
	mu        sync.Mutex
	notReady  bool
	broken    bool
	readers   map[string]BlobRef // token -> namespace and Deployment it may read
	announced map[BlobRef]bool   // with Hex
}

func newFakeAccess() *fakeAccess {
	return &fakeAccess{readers: map[string]BlobRef{}, announced: map[BlobRef]bool{}}
}

func (a *fakeAccess) Ready() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.notReady
}

func (a *fakeAccess) AuthorizeRead(_ context.Context, token string, ref BlobRef) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.broken {
		return errors.New("API server unreachable")
	}
	may, ok := a.readers[token]
	if !ok {
		return Unauthorized("token not accepted")
	}
	if may.Namespace != ref.Namespace || may.Deployment != ref.Deployment {
		return Forbidden("may not get deployment " + ref.Namespace + "/" + ref.Deployment)
	}
	return nil
}

func (a *fakeAccess) AuthorizeUpload(_ context.Context, ref BlobRef) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.broken {
		return errors.New("API server unreachable")
	}
	if !a.announced[ref] {
		return Forbidden("deployment " + ref.Namespace + "/" + ref.Deployment + " does not ask for sha256:" + ref.Hex)
	}
	return nil
}

func (a *fakeAccess) announce(ref BlobRef) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.announced[ref] = true
}

// pins is a set of pinned blobs for WithPins.
type pins struct {
	mu  sync.Mutex
	set map[key]bool
}

func (p *pins) pinned(ns, hex string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set[key{ns, hex}]
}

func (p *pins) pin(ns, hex string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.set == nil {
		p.set = map[key]bool{}
	}
	p.set[key{ns, hex}] = true
}

func newServer(t *testing.T, lim Limits, a Access, opts ...HandlerOption) (*Store, *httptest.Server) {
	t.Helper()
	s, err := Open(t.TempDir(), lim)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(s, a, slog.New(slog.DiscardHandler), opts...))
	t.Cleanup(srv.Close)
	return s, srv
}

// do sends one request with an optional bearer token and returns the
// status, the body and the headers.
func do(t *testing.T, method, url string, body io.Reader, token string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// chunked hides a reader's length, so the request has no Content-Length.
type chunked struct{ io.Reader }
