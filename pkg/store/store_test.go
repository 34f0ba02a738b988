package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// small are limits that unit tests can fill: blobs of up to 100 bytes.
var small = Limits{MaxBlobBytes: 100, MaxTotalBytes: 1000, NamespaceQuotaBytes: 500, MaxUploads: 4, MaxNamespaceUploads: 2}

func TestHandler(t *testing.T) {
	blob := gz(t, "a blob")
	id := digestOf(blob)
	ref := BlobRef{"team-a", "web", id}
	big := sized(1, 101)
	notGzip := []byte("<html>not an archive</html>")
	a := newFakeAccess()
	a.readers["tok-a"] = BlobRef{Namespace: "team-a", Deployment: "web"}
	for _, b := range [][]byte{blob, big, big[:100], notGzip, []byte("short"), gz(t, "other")} {
		a.announce(BlobRef{"team-a", "web", digestOf(b)})
	}
	a.announce(BlobRef{"team-a", "web", digestOf([]byte("other"))})
	path := func(b []byte) string { return BlobRef{"team-a", "web", digestOf(b)}.Path() }
	tests := []struct {
		name     string
		method   string
		path     string
		body     io.Reader
		ctype    string
		token    string
		want     int
		wantBody string
	}{
		{"put", "PUT", ref.Path(), bytes.NewReader(blob), "application/gzip", "", 201, ""},
		{"put again", "PUT", ref.Path(), bytes.NewReader(blob), "", "", 200, ""},
		{"put of a stored digest with other bytes", "PUT", ref.Path(), bytes.NewReader(gz(t, "other")), "", "", 400, "digest mismatch"},
		{"get", "GET", ref.Path(), nil, "", "tok-a", 200, "\x1f\x8b"},
		{"head with a token", "HEAD", ref.Path(), nil, "", "tok-a", 200, ""},
		{"head of an announced digest", "HEAD", ref.Path(), nil, "", "", 200, ""},
		{"hash mismatch", "PUT", path([]byte("other")), bytes.NewReader(blob), "", "", 400, "digest mismatch: body has sha256 " + id},
		{"mismatch is not stored", "GET", path([]byte("other")), nil, "", "tok-a", 404, "no blob team-a/web sha256:"},
		{"over the cap, by Content-Length", "PUT", path(big), bytes.NewReader(big), "", "", 413, "101 bytes, the cap is 100"},
		{"over the cap, streamed", "PUT", path(big), chunked{bytes.NewReader(big)}, "", "", 413, "over the cap of 100 bytes"},
		{"at the cap", "PUT", path(big[:100]), chunked{bytes.NewReader(big[:100])}, "", "", 201, ""},
		{"not gzip", "PUT", path(notGzip), bytes.NewReader(notGzip), "", "", 415, "the body starts 3c 68 74 6d, not a gzip header"},
		{"shorter than a gzip header", "PUT", path([]byte("short")), bytes.NewReader([]byte("short")), "", "", 415, "5 bytes, shorter than a gzip header"},
		{"missing", "GET", BlobRef{"team-a", "web", strings.Repeat("0", 64)}.Path(), nil, "", "tok-a", 404, ""},
		{"upper-case hex", "GET", BlobRef{"team-a", "web", strings.ToUpper(id)}.Path(), nil, "", "tok-a", 400, "want 64 lowercase hex digits"},
		{"short hex", "GET", BlobRef{"team-a", "web", "abc"}.Path(), nil, "", "tok-a", 400, "want 64 lowercase hex digits"},
		{"bad namespace", "GET", BlobRef{"Team_A", "web", id}.Path(), nil, "", "tok-a", 400, `namespace "Team_A"`},
		{"bad deployment", "GET", BlobRef{"team-a", "-web", id}.Path(), nil, "", "tok-a", 400, `deployment "-web"`},
		{"other algorithm", "GET", "/v1/namespaces/team-a/deployments/web/blobs/sha512/" + id, nil, "", "tok-a", 400, "want /v1/namespaces/<namespace>/deployments/<name>/blobs/sha256/"},
		{"unscoped path of earlier versions", "GET", LegacyBlobPathPrefix + id, nil, "", "", 410, "push again with kubectl devhot push"},
		{"delete", "DELETE", ref.Path(), nil, "", "tok-a", 405, "not allowed"},
		{"not a blob content type", "PUT", ref.Path(), bytes.NewReader(blob), "text/plain", "", 415, "want application/gzip"},
		{"healthz", "GET", "/healthz", nil, "", "", 200, "ok"},
		{"readyz", "GET", "/readyz", nil, "", "", 200, "ok"},
		{"unknown path", "GET", "/v2/", nil, "", "", 404, ""},
	}
	s, srv := newServer(t, small, a)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("%s %s: %d %q, want %d with %q", tt.method, tt.path, resp.StatusCode, body, tt.want, tt.wantBody)
			}
		})
	}
	if tmp, _ := os.ReadDir(s.tmp); len(tmp) != 0 {
		t.Errorf("leftovers in tmp/: %v", tmp)
	}
	if s.Has("team-a", digestOf(notGzip)) {
		t.Error("a body that is not gzip was stored")
	}
}

// TestAccess: who may read, who may upload, and what each is told.
func TestAccess(t *testing.T) {
	blob := gz(t, "team a's code")
	ref := BlobRef{"team-a", "web", digestOf(blob)}
	unannounced := gz(t, "junk from another pod")
	junk := BlobRef{"team-a", "web", digestOf(unannounced)}
	a := newFakeAccess()
	a.readers["tok-a"] = BlobRef{Namespace: "team-a", Deployment: "web"}
	a.readers["tok-b"] = BlobRef{Namespace: "team-b", Deployment: "web"}
	a.announce(ref)
	s, srv := newServer(t, small, a)
	if code, body, _ := do(t, "PUT", srv.URL+ref.Path(), bytes.NewReader(blob), ""); code != 201 {
		t.Fatalf("announced PUT: %d %s", code, body)
	}
	inB := BlobRef{"team-b", "web", ref.Hex}
	tests := []struct {
		name, method string
		ref          BlobRef
		body         []byte
		token        string
		want         int
		wantBody     string
	}{
		{"get without a token", "GET", ref, nil, "", 401, "needs a bearer token"},
		{"get with a token not accepted", "GET", ref, nil, "forged", 401, "token not accepted"},
		{"get with another namespace's token", "GET", ref, nil, "tok-b", 403, "may not get deployment team-a/web"},
		{"get of another Deployment", "GET", BlobRef{"team-a", "api", ref.Hex}, nil, "tok-a", 403, "may not get deployment team-a/api"},
		{"another namespace's digest in its own scope", "GET", inB, nil, "tok-b", 404, "no blob team-b/web"},
		{"head with another namespace's token", "HEAD", ref, nil, "tok-b", 403, ""},
		{"head of an unannounced digest", "HEAD", junk, nil, "", 403, ""},
		{"put of an unannounced digest", "PUT", junk, unannounced, "", 403, "does not ask for sha256:" + junk.Hex},
		{"put with a reader's token", "PUT", junk, unannounced, "tok-a", 403, "does not ask for"},
		{"put into another namespace", "PUT", inB, blob, "", 403, "deployment team-b/web does not ask for"},
		{"get with its own token", "GET", ref, nil, "tok-a", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != nil {
				body = bytes.NewReader(tt.body)
			}
			code, got, h := do(t, tt.method, srv.URL+tt.ref.Path(), body, tt.token)
			if code != tt.want || !strings.Contains(got, tt.wantBody) {
				t.Errorf("%d %q, want %d with %q", code, got, tt.want, tt.wantBody)
			}
			if code == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if s.Has("team-a", junk.Hex) || s.Has("team-b", ref.Hex) {
		t.Error("a refused PUT was stored")
	}

	a.mu.Lock()
	a.broken = true
	a.mu.Unlock()
	if code, body, h := do(t, "GET", srv.URL+ref.Path(), nil, "tok-a"); code != 503 || !strings.Contains(body, "cannot check access: API server unreachable") || h.Get("Retry-After") == "" {
		t.Errorf("access cannot decide: %d %q, want 503 with Retry-After", code, body)
	}
	a.mu.Lock()
	a.broken, a.notReady = false, true
	a.mu.Unlock()
	for _, p := range []string{ref.Path(), "/readyz"} {
		if code, body, _ := do(t, "GET", srv.URL+p, nil, "tok-a"); code != 503 || !strings.Contains(body, "not read the Deployments") && !strings.Contains(body, "not ready") {
			t.Errorf("GET %s before access is ready: %d %q, want 503", p, code, body)
		}
	}
}

func TestEviction(t *testing.T) {
	// Blobs of 97 to 98 bytes in namespaces a and b.
	blob := func(i int) []byte { return sized(i, 97+i%2) }
	type op struct {
		verb string // put, get, pin
		ns   string
		i    int
	}
	lim := Limits{MaxBlobBytes: 100, MaxTotalBytes: 500, NamespaceQuotaBytes: 300, MaxUploads: 4, MaxNamespaceUploads: 2}
	tests := []struct {
		name    string
		ops     []op
		kept    []op // as {"", ns, i}
		gone    []op
		wantErr error // of the last op
	}{
		{"a namespace's quota evicts its own oldest", []op{{"put", "a", 1}, {"put", "a", 2}, {"put", "a", 3}, {"put", "a", 4}},
			[]op{{"", "a", 2}, {"", "a", 3}, {"", "a", 4}}, []op{{"", "a", 1}}, nil},
		{"a get counts as a use", []op{{"put", "a", 1}, {"put", "a", 2}, {"put", "a", 3}, {"get", "a", 1}, {"put", "a", 4}},
			[]op{{"", "a", 1}, {"", "a", 3}, {"", "a", 4}}, []op{{"", "a", 2}}, nil},
		{"a put of a stored blob counts as a use", []op{{"put", "a", 1}, {"put", "a", 2}, {"put", "a", 3}, {"put", "a", 1}, {"put", "a", 4}},
			[]op{{"", "a", 1}, {"", "a", 3}, {"", "a", 4}}, []op{{"", "a", 2}}, nil},
		{"over the quota, another namespace's older blob stays", []op{{"put", "b", 9}, {"put", "a", 1}, {"put", "a", 2}, {"put", "a", 3}, {"put", "a", 4}},
			[]op{{"", "b", 9}, {"", "a", 4}}, []op{{"", "a", 1}}, nil},
		{"the total evicts anyone's oldest", []op{{"put", "b", 8}, {"put", "b", 9}, {"put", "a", 1}, {"put", "a", 2}, {"put", "a", 3}, {"put", "b", 10}},
			[]op{{"", "b", 9}, {"", "a", 1}, {"", "b", 10}}, []op{{"", "b", 8}}, nil},
		{"a pinned blob is never evicted by the quota", []op{{"put", "a", 1}, {"pin", "a", 1}, {"put", "a", 2}, {"put", "a", 3}, {"put", "a", 4}},
			[]op{{"", "a", 1}, {"", "a", 3}, {"", "a", 4}}, []op{{"", "a", 2}}, nil},
		{"a pinned blob is never evicted by the total", []op{{"put", "b", 8}, {"pin", "b", 8}, {"put", "b", 9}, {"put", "a", 1}, {"put", "a", 2}, {"put", "a", 3}, {"put", "b", 10}},
			[]op{{"", "b", 8}, {"", "a", 1}, {"", "b", 10}}, []op{{"", "b", 9}}, nil},
		{"the same digest in two namespaces is two blobs", []op{{"put", "a", 1}, {"put", "b", 1}},
			[]op{{"", "a", 1}, {"", "b", 1}}, nil, nil},
		{"pinned blobs fill the quota: refused, nothing evicted", []op{
			{"put", "a", 1}, {"pin", "a", 1}, {"put", "a", 2}, {"pin", "a", 2}, {"put", "a", 3}, {"pin", "a", 3}, {"put", "a", 4}},
			[]op{{"", "a", 1}, {"", "a", 2}, {"", "a", 3}}, []op{{"", "a", 4}}, ErrQuota},
		{"pinned blobs fill the store: refused, nothing evicted", []op{
			{"put", "a", 1}, {"pin", "a", 1}, {"put", "a", 2}, {"pin", "a", 2}, {"put", "b", 3}, {"pin", "b", 3}, {"put", "b", 4}, {"pin", "b", 4},
			{"put", "c", 5}, {"pin", "c", 5}, {"put", "c", 6}},
			[]op{{"", "a", 1}, {"", "a", 2}, {"", "b", 3}, {"", "b", 4}, {"", "c", 5}}, []op{{"", "c", 6}}, ErrFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var removed []string
			p := &pins{}
			dir := t.TempDir()
			s, err := Open(dir, lim, WithPins(p.pinned), WithRemovalHook(func(ns, hex, reason string) {
				removed = append(removed, ns+"/"+hex+" "+reason)
			}))
			if err != nil {
				t.Fatal(err)
			}
			for k, o := range tt.ops {
				id := digestOf(blob(o.i))
				switch o.verb {
				case "put":
					_, err = s.Put(o.ns, id, bytes.NewReader(blob(o.i)), -1)
				case "get":
					var f *os.File
					if f, err = s.Get(o.ns, id); err == nil {
						f.Close()
					}
				case "pin":
					p.pin(o.ns, id)
				}
				if last := k == len(tt.ops)-1; last && !errors.Is(err, tt.wantErr) || !last && err != nil {
					t.Fatalf("%s %s/%d: %v, want %v", o.verb, o.ns, o.i, err, tt.wantErr)
				}
			}
			for _, o := range tt.kept {
				if !s.Has(o.ns, digestOf(blob(o.i))) {
					t.Errorf("blob %s/%d evicted", o.ns, o.i)
				}
			}
			for _, o := range tt.gone {
				if s.Has(o.ns, digestOf(blob(o.i))) {
					t.Errorf("blob %s/%d kept", o.ns, o.i)
				}
				if _, err := os.Stat(filepath.Join(dir, "blobs", o.ns, digestOf(blob(o.i)))); !os.IsNotExist(err) {
					t.Errorf("blob %s/%d still on disk: %v", o.ns, o.i, err)
				}
			}
			if s.Total() > lim.MaxTotalBytes {
				t.Errorf("total %d over the cap", s.Total())
			}
			for _, ns := range []string{"a", "b", "c"} {
				if s.NamespaceTotal(ns) > lim.NamespaceQuotaBytes {
					t.Errorf("namespace %s holds %d bytes, over its quota", ns, s.NamespaceTotal(ns))
				}
			}
			evicted := len(tt.gone)
			if tt.wantErr != nil {
				evicted-- // the refused blob was never stored
			}
			if len(removed) != evicted {
				t.Errorf("removal hook saw %v, want %d evictions", removed, evicted)
			}
			// Recency survives a restart: kept blobs are all there, in order.
			s2, err := Open(dir, lim)
			if err != nil {
				t.Fatal(err)
			}
			if s2.Total() != s.Total() {
				t.Errorf("reopened: total %d, was %d", s2.Total(), s.Total())
			}
		})
	}
}

// TestEvictionOrderSurvivesRestart: a store reopened over its new, smaller
// limits evicts the least recently used blobs first with its next upload.
func TestEvictionOrderSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	lim := Limits{MaxBlobBytes: 100, MaxTotalBytes: 400, NamespaceQuotaBytes: 400, MaxUploads: 1, MaxNamespaceUploads: 1}
	s, err := Open(dir, lim)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2, 3} {
		if _, err := s.Put("a", digestOf(sized(i, 100)), bytes.NewReader(sized(i, 100)), -1); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s.Get("a", digestOf(sized(1, 100)))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	lim.MaxTotalBytes, lim.NamespaceQuotaBytes = 200, 200
	s2, err := Open(dir, lim)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Total() != 300 {
		t.Fatalf("reopened over its limits: total %d, want all 300 bytes kept until the next upload", s2.Total())
	}
	if _, err := s2.Put("a", digestOf(sized(4, 100)), bytes.NewReader(sized(4, 100)), -1); err != nil {
		t.Fatal(err)
	}
	for i, want := range map[int]bool{1: true, 2: false, 3: false, 4: true} {
		if got := s2.Has("a", digestOf(sized(i, 100))); got != want {
			t.Errorf("blob %d kept = %v, want %v (2 and 3 were used least recently)", i, got, want)
		}
	}
}

func TestEvictionKeepsOpenReaders(t *testing.T) {
	lim := Limits{MaxBlobBytes: 10, MaxTotalBytes: 10, NamespaceQuotaBytes: 10, MaxUploads: 1, MaxNamespaceUploads: 1}
	s, err := Open(t.TempDir(), lim)
	if err != nil {
		t.Fatal(err)
	}
	a, b := sized(1, 10), sized(2, 10)
	if _, err := s.Put("ns", digestOf(a), bytes.NewReader(a), 10); err != nil {
		t.Fatal(err)
	}
	f, err := s.Get("ns", digestOf(a))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s.Put("ns", digestOf(b), bytes.NewReader(b), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("ns", digestOf(a)); err != ErrNotFound {
		t.Errorf("evicted blob: Get gave %v, want ErrNotFound", err)
	}
	if got, _ := io.ReadAll(f); !bytes.Equal(got, a) {
		t.Errorf("reader of the evicted blob read %q", got)
	}
}

// TestOpenRemovesUnscopedBlobs: blobs of the layout before namespaces
// (blobs/<hex>) cannot be named by any request; Open removes them and
// says so, and leaves files it does not know alone.
func TestOpenRemovesUnscopedBlobs(t *testing.T) {
	dir := t.TempDir()
	old := strings.Repeat("a", 64)
	for _, p := range []string{"blobs/" + old, "blobs/README", "blobs/team-a/" + strings.Repeat("b", 64)} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var removed []string
	s, err := Open(dir, small, WithRemovalHook(func(ns, hex, reason string) { removed = append(removed, ns+"/"+hex+" "+reason) }))
	if err != nil {
		t.Fatal(err)
	}
	if want := "/" + old + " " + RemovedUnscoped; len(removed) != 1 || removed[0] != want {
		t.Errorf("removed %v, want [%s]", removed, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "README")); err != nil {
		t.Errorf("a file the store does not know was touched: %v", err)
	}
	if !s.Has("team-a", strings.Repeat("b", 64)) || s.Total() != 1 {
		t.Errorf("scoped blob not kept: total %d", s.Total())
	}
}

// stalledPut starts a PUT that sends head and then nothing until release
// is closed, and returns its status once it ends.
func stalledPut(t *testing.T, url string, head []byte, release <-chan struct{}) <-chan int {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(head)
		<-release
		pw.Close()
	}()
	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("PUT", url, pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	return got
}

// TestStalledUploads: clients that send a few bytes and stall hold at most
// MaxUploads slots (MaxNamespaceUploads per namespace), each at most
// MaxBlobBytes in tmp/, until the upload timeout drops them with 408; the
// rest are refused at once with 503 and Retry-After.
func TestStalledUploads(t *testing.T) {
	a := newFakeAccess()
	lim := Limits{MaxBlobBytes: 100, MaxTotalBytes: 1000, NamespaceQuotaBytes: 500, MaxUploads: 3, MaxNamespaceUploads: 2}
	const timeout = 1500 * time.Millisecond
	s, srv := newServer(t, lim, a, WithUploadTimeout(timeout))
	ref := func(ns string, i int) BlobRef {
		r := BlobRef{ns, "web", digestOf(sized(i, 100))}
		a.announce(r)
		return r
	}
	inTmp := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			des, _ := os.ReadDir(s.tmp)
			var bytes int64
			for _, de := range des {
				if fi, err := de.Info(); err == nil {
					bytes += fi.Size()
				}
			}
			if bytes > int64(len(des))*lim.MaxBlobBytes {
				t.Fatalf("tmp/ holds %d bytes in %d uploads", bytes, len(des))
			}
			if len(des) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("tmp/ holds %d uploads, want %d", len(des), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	release := make(chan struct{})
	defer close(release)
	head := sized(0, 20)
	stalled := []<-chan int{
		stalledPut(t, srv.URL+ref("team-a", 0).Path(), head, release),
		stalledPut(t, srv.URL+ref("team-a", 1).Path(), head, release),
	}
	inTmp(2)
	refuse := func(r BlobRef, want string) {
		t.Helper()
		code, body, h := do(t, "PUT", srv.URL+r.Path(), bytes.NewReader(sized(9, 100)), "")
		if code != 503 || !strings.Contains(body, want) || h.Get("Retry-After") == "" {
			t.Errorf("PUT %s past the slots: %d %q, want 503 with %q and Retry-After", r, code, body, want)
		}
	}
	refuse(ref("team-a", 2), "namespace team-a has 2 uploads in flight")
	stalled = append(stalled, stalledPut(t, srv.URL+ref("team-b", 3).Path(), head, release))
	inTmp(3)
	refuse(ref("team-b", 4), "3 uploads are in flight, the most the store takes")
	deadline := time.After(3 * timeout)
	for i, c := range stalled {
		select {
		case code := <-c:
			if code != http.StatusRequestTimeout {
				t.Errorf("stalled upload %d ended with %d, want 408", i, code)
			}
		case <-deadline:
			t.Fatalf("stalled upload %d still held after 3× the upload timeout", i)
		}
	}
	inTmp(0)
	// The slots are free again.
	r := ref("team-a", 5)
	if code, body, _ := do(t, "PUT", srv.URL+r.Path(), bytes.NewReader(sized(5, 100)), ""); code != 201 {
		t.Errorf("PUT after the stalled ones timed out: %d %q", code, body)
	}
}

// TestNotGzipWritesNothing: a body refused as not gzip leaves no file, even
// one that stalls after its first bytes.
func TestNotGzipWritesNothing(t *testing.T) {
	a := newFakeAccess()
	s, srv := newServer(t, small, a)
	r := BlobRef{"team-a", "web", strings.Repeat("d", 64)}
	a.announce(r)
	release := make(chan struct{})
	got := stalledPut(t, srv.URL+r.Path(), []byte("PK\x03\x04 a zip, not a gzip"), release)
	select {
	case c := <-got:
		if c != 415 {
			t.Errorf("zip body: %d, want 415", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a zip body was not refused before its end")
	}
	close(release)
	if des, _ := os.ReadDir(s.tmp); len(des) != 0 {
		t.Errorf("tmp/ holds %v", des)
	}
}

func TestConcurrentPutsOfOneBlob(t *testing.T) {
	lim := DefaultLimits
	lim.MaxUploads, lim.MaxNamespaceUploads = 16, 16
	a := newFakeAccess()
	s, srv := newServer(t, lim, a)
	blob := gz(t, strings.Repeat("concurrent ", 50000))
	ref := BlobRef{"ns", "web", digestOf(blob)}
	a.announce(ref)
	const n = 16
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("PUT", srv.URL+ref.Path(), chunked{bytes.NewReader(blob)})
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		switch c {
		case 201:
			created++
		case 200:
		default:
			t.Errorf("status %d", c)
		}
	}
	if created != 1 {
		t.Errorf("%d PUTs created the blob, want 1 (codes %v)", created, codes)
	}
	if s.Total() != int64(len(blob)) {
		t.Errorf("total %d, want %d: counted twice?", s.Total(), len(blob))
	}
	f, err := s.Get("ns", ref.Hex)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, _ := io.ReadAll(f); !bytes.Equal(got, blob) {
		t.Errorf("stored %d bytes, want the blob's %d", len(got), len(blob))
	}
	if tmp, _ := os.ReadDir(s.tmp); len(tmp) != 0 {
		t.Errorf("leftover uploads: %v", tmp)
	}
}

func TestOpenBadLimits(t *testing.T) {
	for _, tc := range []struct {
		lim  Limits
		want string
	}{
		{Limits{0, 10, 10, 1, 1}, "max blob bytes (0)"},
		{Limits{10, 5, 10, 1, 1}, "namespace quota bytes (10) <= max total bytes (5)"},
		{Limits{10, 50, 5, 1, 1}, "max blob bytes (10) <= namespace quota bytes (5)"},
		{Limits{-1, -1, -1, 1, 1}, "max blob bytes"},
		{Limits{10, 10, 10, 0, 0}, "1 <= max namespace uploads (0)"},
		{Limits{10, 10, 10, 1, 2}, "max namespace uploads (2) <= max uploads (1)"},
	} {
		if _, err := Open(t.TempDir(), tc.lim); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open with %+v: %v, want an error with %q", tc.lim, err, tc.want)
		}
	}
}

func TestClient(t *testing.T) {
	a := newFakeAccess()
	_, srv := newServer(t, small, a)
	c := &Client{HTTP: srv.Client(), Base: srv.URL + "/"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	blob := gz(t, "client blob")
	ref := BlobRef{"ns", "web", digestOf(blob)}
	a.announce(ref)
	wrong := BlobRef{"ns", "web", strings.Repeat("a", 64)}
	a.announce(wrong)
	large := sized(7, 200)
	tooLarge := BlobRef{"ns", "web", digestOf(large)}
	a.announce(tooLarge)
	tests := []struct {
		name    string
		run     func() error
		wantErr string
	}{
		{"absent", func() error {
			if has, err := c.Has(ctx, ref); err != nil || has {
				return fmt.Errorf("Has = %v, %v before the upload", has, err)
			}
			return nil
		}, ""},
		{"put", func() error { return c.Put(ctx, ref, blob) }, ""},
		{"present", func() error {
			if has, err := c.Has(ctx, ref); err != nil || !has {
				return fmt.Errorf("Has = %v, %v after the upload", has, err)
			}
			return nil
		}, ""},
		{"not announced names status and reason", func() error { return c.Put(ctx, BlobRef{"ns", "api", ref.Hex}, blob) }, "403 Forbidden: deployment ns/api does not ask for"},
		{"mismatch names status and reason", func() error { return c.Put(ctx, wrong, blob) }, "400 Bad Request: digest mismatch"},
		{"too large", func() error { return c.Put(ctx, tooLarge, large) }, "413 Request Entity Too Large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestClientProgress: an upload with Progress set is stored as without,
// and Progress sees every byte of it leave, ending at its size.
func TestClientProgress(t *testing.T) {
	a := newFakeAccess()
	_, srv := newServer(t, small, a)
	var calls, last, total int64
	c := &Client{HTTP: srv.Client(), Base: srv.URL, Progress: func(sent, size int64) {
		if sent < last {
			t.Errorf("progress went back from %d to %d", last, sent)
		}
		calls, last, total = calls+1, sent, size
	}}
	blob := gz(t, strings.Repeat("progress ", 100))
	ref := BlobRef{"ns", "web", digestOf(blob)}
	a.announce(ref)
	if err := c.Put(context.Background(), ref, blob); err != nil {
		t.Fatal(err)
	}
	if has, err := c.Has(context.Background(), ref); err != nil || !has {
		t.Fatalf("Has = %v, %v after the upload", has, err)
	}
	if calls == 0 || last != int64(len(blob)) || total != int64(len(blob)) {
		t.Errorf("progress: %d calls, last %d of %d; want the last at %d", calls, last, total, len(blob))
	}
}

// TestClientRetriesWhenBusy: a 503 with Retry-After is tried again, a 503
// without it is not.
func TestClientRetriesWhenBusy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		busyFor    int
		wantTries  int
		wantErr    string
	}{
		{"busy twice", "0", 2, 3, ""},
		{"busy past the retries", "0", 100, 4, "503 Service Unavailable"},
		{"no Retry-After", "", 1, 1, "503 Service Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tries := 0
			srv := newPlainServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tries++
				if tries <= tc.busyFor {
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					http.Error(w, "busy", http.StatusServiceUnavailable)
					return
				}
				w.WriteHeader(http.StatusCreated)
			}))
			c := &Client{HTTP: http.DefaultClient, Base: srv, BusyRetries: 3}
			err := c.Put(context.Background(), BlobRef{"ns", "web", strings.Repeat("a", 64)}, []byte("x"))
			if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if tries != tc.wantTries {
				t.Errorf("%d tries, want %d", tries, tc.wantTries)
			}
		})
	}
}

// newPlainServer serves h on loopback and returns its URL.
func newPlainServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
