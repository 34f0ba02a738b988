// Package artifact builds versions of the test app (test/testdata/app) as
// .tar.gz artifacts and serves them on loopback, counting downloads, for the
// end-to-end tests, the benchmarks and `make demo`.
package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/aether-dev/aether-devhot/pkg/digest"
)

// Artifact is one built version.
type Artifact struct {
	Version int
	Data    []byte
	// Digest is "sha256:<hex>" of Data.
	Digest string
}

// App builds version v of the app in appDir: its files plus a version.json
// that the app answers with.
func App(appDir string, v int) (Artifact, error) {
	files := map[string][]byte{"version.json": fmt.Appendf(nil, `{"version":%d}`, v)}
	entries, err := os.ReadDir(appDir)
	if err != nil {
		return Artifact{}, err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(appDir, e.Name()))
			if err != nil {
				return Artifact{}, err
			}
			files[e.Name()] = b
		}
	}
	data, err := TarGz(files)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Version: v, Data: data, Digest: digest.Of(data)}, nil
}

// TarGz packs files, sorted by name, as a gzipped tar.
func TarGz(files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Server serves blobs on a loopback port and counts requests.
type Server struct {
	srv      *http.Server
	ln       net.Listener
	mu       sync.Mutex
	blobs    map[string][]byte
	requests atomic.Int64
}

// NewServer listens on 127.0.0.1 on a free port.
func NewServer() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, blobs: map[string][]byte{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mu.Lock()
	b, ok := s.blobs[r.URL.Path]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(b)
}

// Put serves data at /name and returns its URL.
func (s *Server) Put(name string, data []byte) string {
	s.mu.Lock()
	s.blobs["/"+name] = data
	s.mu.Unlock()
	return "http://" + s.ln.Addr().String() + "/" + name
}

// Requests is how many requests the server has answered.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }
