package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newServer(t *testing.T, lim Limits) (*Store, *httptest.Server) {
	t.Helper()
	s, err := Open(t.TempDir(), lim)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(s, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return s, srv
}

// chunked hides a reader's length, so the request has no Content-Length.
type chunked struct{ io.Reader }

func TestHandler(t *testing.T) {
	blob := []byte("a blob")
	id := digestOf(blob)
	big := bytes.Repeat([]byte("x"), 101)
	tests := []struct {
		name     string
		method   string
		path     string
		body     io.Reader
		ctype    string
		want     int
		wantBody string
	}{
		{"put", "PUT", BlobPath(id), bytes.NewReader(blob), "application/gzip", 201, ""},
		{"put again", "PUT", BlobPath(id), bytes.NewReader(blob), "", 200, ""},
		{"get", "GET", BlobPath(id), nil, "", 200, "a blob"},
		{"head", "HEAD", BlobPath(id), nil, "", 200, ""},
		{"hash mismatch", "PUT", BlobPath(digestOf([]byte("other"))), bytes.NewReader(blob), "", 400, "digest mismatch: body has sha256 " + id},
		{"mismatch is not stored", "GET", BlobPath(digestOf([]byte("other"))), nil, "", 404, "no blob sha256:"},
		{"over the cap, by Content-Length", "PUT", BlobPath(digestOf(big)), bytes.NewReader(big), "", 413, "101 bytes, the cap is 100"},
		{"over the cap, streamed", "PUT", BlobPath(digestOf(big)), chunked{bytes.NewReader(big)}, "", 413, "over the cap of 100 bytes"},
		{"at the cap", "PUT", BlobPath(digestOf(big[:100])), chunked{bytes.NewReader(big[:100])}, "", 201, ""},
		{"missing", "GET", BlobPath(strings.Repeat("0", 64)), nil, "", 404, ""},
		{"upper-case hex", "GET", BlobPath(strings.ToUpper(id)), nil, "", 400, "64 lowercase hex"},
		{"short hex", "GET", BlobPath("abc"), nil, "", 400, "64 lowercase hex"},
		{"other algorithm", "GET", "/v1/blobs/sha512/" + id, nil, "", 400, "not under /v1/blobs/sha256/"},
		{"delete", "DELETE", BlobPath(id), nil, "", 405, "not allowed"},
		{"not a blob content type", "PUT", BlobPath(id), bytes.NewReader(blob), "text/plain", 415, "want application/gzip"},
		{"healthz", "GET", "/healthz", nil, "", 200, "ok"},
		{"unknown path", "GET", "/v2/", nil, "", 404, ""},
	}
	_, srv := newServer(t, Limits{MaxBlobBytes: 100, MaxTotalBytes: 1000})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
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
}

func TestEviction(t *testing.T) {
	blob := func(i int) []byte { return fmt.Appendf(nil, "blob %d %s", i, strings.Repeat("x", 90)) } // 97 or 98 bytes
	tests := []struct {
		name string
		// ops: "put N" or "get N", in order.
		ops  []string
		kept []int
		gone []int
	}{
		{"oldest goes", []string{"put 1", "put 2", "put 3", "put 4"}, []int{2, 3, 4}, []int{1}},
		{"a get counts as a use", []string{"put 1", "put 2", "put 3", "get 1", "put 4"}, []int{1, 3, 4}, []int{2}},
		{"a put of a stored blob counts as a use", []string{"put 1", "put 2", "put 3", "put 1", "put 4"}, []int{1, 3, 4}, []int{2}},
		{"two go for one", []string{"put 1", "put 2", "put 3", "put 4", "put 5", "get 3", "put 6"}, []int{3, 5, 6}, []int{1, 2, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var evicted []string
			dir := t.TempDir()
			s, err := Open(dir, Limits{MaxBlobBytes: 100, MaxTotalBytes: 300}, WithEvictionHook(func(id string) { evicted = append(evicted, id) }))
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range tt.ops {
				var i int
				var verb string
				fmt.Sscanf(op, "%s %d", &verb, &i)
				if verb == "put" {
					if _, err := s.Put(digestOf(blob(i)), bytes.NewReader(blob(i)), -1); err != nil {
						t.Fatal(err)
					}
					continue
				}
				f, err := s.Get(digestOf(blob(i)))
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			check := func(s *Store, when string) {
				for _, i := range tt.kept {
					if !s.Has(digestOf(blob(i))) {
						t.Errorf("%s: blob %d evicted", when, i)
					}
				}
				for _, i := range tt.gone {
					if s.Has(digestOf(blob(i))) {
						t.Errorf("%s: blob %d kept", when, i)
					}
					if _, err := os.Stat(filepath.Join(dir, "blobs", digestOf(blob(i)))); !os.IsNotExist(err) {
						t.Errorf("%s: blob %d still on disk: %v", when, i, err)
					}
				}
				if s.Total() > 300 {
					t.Errorf("%s: total %d over the cap", when, s.Total())
				}
			}
			check(s, "after the ops")
			if len(evicted) != len(tt.gone) {
				t.Errorf("eviction hook saw %d blobs, want %d", len(evicted), len(tt.gone))
			}
			// Recency survives a restart: a smaller cap now keeps the newest.
			s2, err := Open(dir, Limits{MaxBlobBytes: 100, MaxTotalBytes: 100})
			if err != nil {
				t.Fatal(err)
			}
			if newest := tt.kept[len(tt.kept)-1]; !s2.Has(digestOf(blob(newest))) || s2.Total() > 100 {
				t.Errorf("reopened with a cap of one blob: blob %d gone or total %d", newest, s2.Total())
			}
		})
	}
}

func TestEvictionKeepsOpenReaders(t *testing.T) {
	s, err := Open(t.TempDir(), Limits{MaxBlobBytes: 10, MaxTotalBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	a, b := []byte("aaaaaaaaaa"), []byte("bbbbbbbbbb")
	if _, err := s.Put(digestOf(a), bytes.NewReader(a), 10); err != nil {
		t.Fatal(err)
	}
	f, err := s.Get(digestOf(a))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s.Put(digestOf(b), bytes.NewReader(b), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(digestOf(a)); err != ErrNotFound {
		t.Errorf("evicted blob: Get gave %v, want ErrNotFound", err)
	}
	if got, _ := io.ReadAll(f); !bytes.Equal(got, a) {
		t.Errorf("reader of the evicted blob read %q", got)
	}
}

func TestConcurrentPutsOfOneBlob(t *testing.T) {
	s, srv := newServer(t, DefaultLimits)
	blob := bytes.Repeat([]byte("concurrent "), 50000)
	id := digestOf(blob)
	const n = 16
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("PUT", srv.URL+BlobPath(id), chunked{bytes.NewReader(blob)})
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
	f, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, _ := io.ReadAll(f); !bytes.Equal(got, blob) {
		t.Errorf("stored %d bytes, want the blob's %d", len(got), len(blob))
	}
	tmp, _ := os.ReadDir(s.tmp)
	if len(tmp) != 0 {
		t.Errorf("leftover uploads: %v", tmp)
	}
}

func TestOpenBadLimits(t *testing.T) {
	for _, lim := range []Limits{{0, 10}, {10, 5}, {-1, -1}} {
		if _, err := Open(t.TempDir(), lim); err == nil || !strings.Contains(err.Error(), "max blob bytes") {
			t.Errorf("Open with %+v: %v, want an error about the limits", lim, err)
		}
	}
}

func TestClient(t *testing.T) {
	_, srv := newServer(t, Limits{MaxBlobBytes: 100, MaxTotalBytes: 1000})
	c := &Client{HTTP: srv.Client(), Base: srv.URL + "/"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	blob := []byte("client blob")
	id := digestOf(blob)
	tests := []struct {
		name    string
		run     func() error
		wantErr string
	}{
		{"absent", func() error {
			if has, err := c.Has(ctx, id); err != nil || has {
				return fmt.Errorf("Has = %v, %v before the upload", has, err)
			}
			return nil
		}, ""},
		{"put", func() error { return c.Put(ctx, id, blob) }, ""},
		{"present", func() error {
			if has, err := c.Has(ctx, id); err != nil || !has {
				return fmt.Errorf("Has = %v, %v after the upload", has, err)
			}
			return nil
		}, ""},
		{"mismatch names status and reason", func() error { return c.Put(ctx, strings.Repeat("a", 64), blob) }, "400 Bad Request: digest mismatch"},
		{"too large", func() error { return c.Put(ctx, digestOf(make([]byte, 200)), make([]byte, 200)) }, "413 Request Entity Too Large"},
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
