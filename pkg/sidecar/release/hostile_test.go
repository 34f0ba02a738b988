package release_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// The hostile archives of the review of issue 13, each of which got past
// the caps. They are also kept as FuzzExtract's corpus (testdata/fuzz).

// deepDirs has n directory entries, each a path depth levels deep of its
// own: few bytes, and n*depth directories on disk (the review's 13 KB
// archive of 1,900 entries made 88k directories).
func deepDirs(t testing.TB, n, depth int) []byte {
	var es []entry
	for i := range n {
		es = append(es, dir(fmt.Sprintf("d%05d/%s", i, strings.Repeat("x/", depth-1))))
	}
	return tgz(t, es...)
}

// deepPath is one file levels directories deep: os.Root re-walks every
// parent for each directory it makes, so the cost grows with the square
// of the depth (8,000 levels took 70 s).
func deepPath(t testing.TB, levels int) []byte {
	return tgz(t, file(strings.Repeat("a/", levels)+"f.js", "1"))
}

// longNames has n directory entries whose paths are size bytes long, all
// in one parent, within the caps on depth and length: an extractor that
// remembers every name grows by n*size.
func longNames(t testing.TB, n, size int) []byte {
	prefix := strings.Repeat(strings.Repeat("p", release.MaxNameBytes-1)+"/", 3)
	var es []entry
	for i := range n {
		leaf := fmt.Sprintf("%06d", i)
		es = append(es, dir(prefix+leaf+strings.Repeat("n", size-len(prefix)-len(leaf))+"/"))
	}
	return tgz(t, es...)
}

// emptyFiles has n empty files: no bytes of content, n inodes.
func emptyFiles(t testing.TB, n int) []byte {
	var es []entry
	for i := range n {
		es = append(es, file(fmt.Sprintf("f%05d", i), ""))
	}
	return tgz(t, es...)
}

// TestByteCapCountsBlocks: what a release takes on disk is capped, at a
// block at least for every entry and every directory it makes.
func TestByteCapCountsBlocks(t *testing.T) {
	const block = release.BlockSize
	cases := []struct {
		name     string
		artifact func(t *testing.T) []byte
		max      int64
		ok       bool
	}{
		{"4 empty files in 4 blocks", func(t *testing.T) []byte { return emptyFiles(t, 4) }, 4 * block, true},
		{"5 empty files in 4 blocks", func(t *testing.T) []byte { return emptyFiles(t, 5) }, 4 * block, false},
		{"a file of a block and a byte takes 2", func(t *testing.T) []byte {
			return tgz(t, file("a", strings.Repeat("x", block+1)))
		}, 2 * block, true},
		{"a file of a block and a byte in 1", func(t *testing.T) []byte {
			return tgz(t, file("a", strings.Repeat("x", block+1)))
		}, 7000, false},
		{"a file and its 2 implicit parents in 3", func(t *testing.T) []byte { return tgz(t, file("a/b/c", "1")) }, 3 * block, true},
		{"a file and its 2 implicit parents in 2", func(t *testing.T) []byte { return tgz(t, file("a/b/c", "1")) }, 2 * block, false},
		{"a directory given twice takes 2", func(t *testing.T) []byte { return tgz(t, dir("a/"), dir("a/")) }, 2 * block, true},
		{"a directory given twice in 1", func(t *testing.T) []byte { return tgz(t, dir("a/"), dir("a/")) }, block, false},
		{"a path at the depth cap", func(t *testing.T) []byte { return deepPath(t, release.MaxPathDepth-1) }, 1 << 20, true},
		{"a path at the length cap", func(t *testing.T) []byte {
			name := strings.Repeat(strings.Repeat("l", 99)+"/", 10)
			return tgz(t, file(name+strings.Repeat("f", release.MaxPathBytes-len(name)), "1"))
		}, 1 << 20, true},
		{"a name at the kernel's cap", func(t *testing.T) []byte {
			return tgz(t, file(strings.Repeat("n", release.MaxNameBytes), "1"))
		}, 1 << 20, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			_, err := f.apply(f.target("/a.tgz", tc.artifact(t)), release.Limits{MaxBytes: tc.max})
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && release.ReasonOf(err) != refresh.ReasonSizeLimit:
				t.Fatalf("error %v, want reason size_limit", err)
			}
			f.wait()
			f.checkClean()
		})
	}
}

// TestCancelInsideExtraction cancels, or times out, an Apply whose bytes
// have all arrived and whose directories take long to make: it must return
// within 1 s, with the cause, and publish nothing. The body is in memory,
// so only the extractor can notice.
func TestCancelInsideExtraction(t *testing.T) {
	slow := deepDirs(t, 400, release.MaxPathDepth-1)
	cases := []struct {
		name string
		lim  release.Limits
		// cancel is when the test cancels; 0 leaves it to the timeout.
		cancel time.Duration
		want   error
	}{
		{"cancelled", release.Limits{}, 300 * time.Millisecond, context.Canceled},
		{"timed out", release.Limits{Timeout: 300 * time.Millisecond}, 0, context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			prev := f.publish("/prev.tgz", "prev")
			tg := mustTarget(t, digestOf(slow), "http://artifacts.invalid/slow.tgz")
			client := &http.Client{Transport: memTransport{slow}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			at := make(chan time.Time, 1)
			if tc.cancel > 0 {
				timer := time.AfterFunc(tc.cancel, func() { at <- time.Now(); cancel() })
				defer timer.Stop()
			}
			start := time.Now()
			_, err := f.ws.Apply(ctx, client, tg, tc.lim)
			end := time.Now()
			var cancelled time.Time
			select {
			case cancelled = <-at:
			default:
				cancelled = start.Add(tc.lim.Timeout)
			}
			took := end.Sub(cancelled)
			t.Logf("Apply returned %s after it was cancelled", took.Round(time.Millisecond))
			if took > time.Second {
				t.Errorf("Apply returned %s after it was cancelled, want within 1 s", took.Round(time.Millisecond))
			}
			if release.ReasonOf(err) != refresh.ReasonDownload || !errors.Is(err, tc.want) {
				t.Errorf("error %v, want a download error wrapping %v", err, tc.want)
			}
			if got := f.ws.Current(); got != prev.Digest {
				t.Errorf("Current() = %q, want %q", got, prev.Digest)
			}
			f.wait()
			f.checkClean()
		})
	}
}

// TestMemoryBoundedWhateverTheNames extracts 20k directories with paths
// of 1000 bytes (the review grew the heap by about 80 MB with 4 KB names,
// which the caps now refuse) and samples the live heap when the last byte
// has been read, while the extractor is still alive. It runs on a tmpfs,
// where 20k directories take a second rather than ten on a busy disk.
func TestMemoryBoundedWhateverTheNames(t *testing.T) {
	vol, ok := tmpfs(t, "256m")
	if !ok {
		return
	}
	const n, size = 20000, 1000
	b := longNames(t, n, size)
	f := fixtureAt(t, vol, filepath.Join(vol, "ws"))
	tg := mustTarget(t, digestOf(b), "http://artifacts.invalid/names.tgz")
	body := &heapAtEOF{r: bytes.NewReader(b)}
	client := &http.Client{Transport: bodyTransport{body}}
	before := liveHeap()
	if _, err := f.ws.Apply(context.Background(), client, tg, release.Limits{}); err != nil {
		t.Fatal(err)
	}
	if body.heap == 0 {
		t.Fatal("the body was not read to its end")
	}
	grew := int64(body.heap) - int64(before)
	t.Logf("live heap grew by %d KiB while extracting %d names of %d bytes", grew>>10, n, size)
	if limit := int64(n * size / 4); grew > limit {
		t.Errorf("live heap grew by %d KiB, want under %d KiB: the names are kept", grew>>10, limit>>10)
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// heapAtEOF records liveHeap when its reader first reports io.EOF.
type heapAtEOF struct {
	r    io.Reader
	heap uint64
}

func (h *heapAtEOF) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if err == io.EOF && h.heap == 0 {
		h.heap = liveHeap()
	}
	return n, err
}

// bodyTransport answers the one request with body.
type bodyTransport struct{ body io.Reader }

func (b bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: http.Header{},
		Body: io.NopCloser(b.body), ContentLength: -1, Request: r}, nil
}

// handRoot serves a root of one part that lists lines ("<hex> <size>
// <mode> <path>"), as a hostile pusher would write it, and returns its
// target.
func handRoot(t *testing.T, s *blobServer, files int, bytes int64, lines ...string) annotations.Target {
	part := []byte(manifest.PartMagic + strings.Join(lines, "\n") + "\n")
	return s.rootTarget(t, fmt.Appendf(nil, "%sfiles %d bytes %d\npart %s %d\n", manifest.RootMagic, files, bytes, s.putBlob(part), len(lines)))
}

// TestHostileDelta: delta releases that lie about their files, or would
// put them outside the release, are refused with the reason the fetcher
// counts, and publish nothing.
func TestHostileDelta(t *testing.T) {
	good := "module.exports = 1\n"
	goodHex := sha256Hex([]byte(good))
	cases := []struct {
		name   string
		target func(t *testing.T, s *blobServer) annotations.Target
		lim    release.Limits
		want   refresh.Reason
	}{
		{"a part path that climbs out", func(t *testing.T, s *blobServer) annotations.Target {
			return handRoot(t, s, 1, int64(len(good)), fmt.Sprintf("%s %d 644 ../x", s.putBlob([]byte(good)), len(good)))
		}, release.Limits{}, refresh.ReasonUnsafePath},
		{"an absolute part path", func(t *testing.T, s *blobServer) annotations.Target {
			return handRoot(t, s, 1, int64(len(good)), fmt.Sprintf("%s %d 644 /etc/x", s.putBlob([]byte(good)), len(good)))
		}, release.Limits{}, refresh.ReasonUnsafePath},
		{"a file whose bytes lie", func(t *testing.T, s *blobServer) annotations.Target {
			// Not a.js, which would be copied from the release before.
			r := s.release(t, tree{"a.js": good, "b.js": "honest"})
			s.put(sha256Hex([]byte("honest")), []byte("liar!!"))
			return r.target
		}, release.Limits{}, refresh.ReasonChecksum},
		{"a file longer than it says", func(t *testing.T, s *blobServer) annotations.Target {
			return handRoot(t, s, 1, 3, fmt.Sprintf("%s 3 644 a.js", s.putBlob([]byte(good))))
		}, release.Limits{}, refresh.ReasonChecksum},
		{"a part whose bytes lie", func(t *testing.T, s *blobServer) annotations.Target {
			r := s.release(t, tree{"a.js": good})
			s.put(r.parts[0].Hex, []byte(manifest.PartMagic+goodHex+" 19 755 a.js\n"))
			return r.target
		}, release.Limits{}, refresh.ReasonChecksum},
		{"a root that is not the digest", func(t *testing.T, s *blobServer) annotations.Target {
			r := s.release(t, tree{"a.js": good})
			s.put(hexOf(r.target.Digest), append(r.root, '\n'))
			return r.target
		}, release.Limits{}, refresh.ReasonChecksum},
		{"a root claiming 10^9 files", func(t *testing.T, s *blobServer) annotations.Target {
			return s.rootTarget(t, []byte(manifest.RootMagic+"files 1000000000 bytes 1\n"))
		}, release.Limits{}, refresh.ReasonSizeLimit},
		{"more files than MaxEntries", func(t *testing.T, s *blobServer) annotations.Target {
			return s.release(t, tree{"a.js": "1", "b.js": "2", "c.js": "3"}).target
		}, release.Limits{MaxEntries: 2}, refresh.ReasonSizeLimit},
		{"more bytes on disk than MaxBytes", func(t *testing.T, s *blobServer) annotations.Target {
			return s.release(t, tree{"a.js": "1", "b.js": "2", "c.js": "3"}).target
		}, release.Limits{MaxBytes: 2 * release.BlockSize}, refresh.ReasonSizeLimit},
		{"directories over MaxBytes", func(t *testing.T, s *blobServer) annotations.Target {
			return s.release(t, tree{"a/b/c.js": "1"}).target
		}, release.Limits{MaxBytes: 2 * release.BlockSize}, refresh.ReasonSizeLimit},
		{"a name longer than the kernel's", func(t *testing.T, s *blobServer) annotations.Target {
			return s.release(t, tree{strings.Repeat("n", release.MaxNameBytes+1): "1"}).target
		}, release.Limits{}, refresh.ReasonSizeLimit},
		{"a malformed part", func(t *testing.T, s *blobServer) annotations.Target {
			return handRoot(t, s, 1, 1, "not an entry")
		}, release.Limits{}, refresh.ReasonManifest},
		{"a part that lists fewer files than the root says", func(t *testing.T, s *blobServer) annotations.Target {
			return handRoot(t, s, 2, int64(len(good)), fmt.Sprintf("%s %d 644 a.js", s.putBlob([]byte(good)), len(good)))
		}, release.Limits{}, refresh.ReasonManifest},
		{"a file that is a directory of another", func(t *testing.T, s *blobServer) annotations.Target {
			h := s.putBlob([]byte(good))
			return handRoot(t, s, 2, 2*int64(len(good)), fmt.Sprintf("%s %d 644 a", h, len(good)), fmt.Sprintf("%s %d 644 a/b", h, len(good)))
		}, release.Limits{}, refresh.ReasonManifest},
		{"a missing file", func(t *testing.T, s *blobServer) annotations.Target {
			return handRoot(t, s, 1, 5, fmt.Sprintf("%s 5 644 a.js", sha256Hex([]byte("never"))))
		}, release.Limits{}, refresh.ReasonHTTPStatus},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			s := newBlobServer(t)
			prev := s.release(t, tree{"a.js": good, "lib/x.js": "x"})
			if _, err := f.apply(prev.target, release.Limits{}); err != nil {
				t.Fatal(err)
			}
			tg := tc.target(t, s)
			_, err := f.apply(tg, tc.lim)
			t.Log(err)
			if release.ReasonOf(err) != tc.want {
				t.Errorf("error %v, want reason %s", err, tc.want)
			}
			if got := f.ws.Current(); got != prev.target.Digest || f.ws.Has(tg.Digest) {
				t.Errorf("Current() = %q, want the previous %q, and nothing published", got, prev.target.Digest)
			}
			checkTree(t, f.dir, prev.target, tree{"a.js": good, "lib/x.js": "x"})
			f.checkClean()
		})
	}
}
