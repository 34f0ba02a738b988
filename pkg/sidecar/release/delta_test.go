package release_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
	"github.com/aether-dev/aether-devhot/pkg/oci"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
	"github.com/aether-dev/aether-devhot/test/framework/ociregistry"
)

// blobPath is where blobServer serves blob <hex>, as the store does.
const blobPath = "/v1/namespaces/ns/deployments/web/blobs/sha256/"

// blobServer serves blobs by the hex of their sha256, raw.
type blobServer struct {
	srv *httptest.Server

	mu   sync.Mutex
	data map[string][]byte
	hits map[string]int
	// stall, when set, is a blob whose first byte is sent, then nothing
	// until the request ends; stalled is closed when that byte is sent.
	stall   string
	stalled chan struct{}
}

func newBlobServer(t *testing.T) *blobServer {
	s := &blobServer{data: map[string][]byte{}, hits: map[string]int{}, stalled: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hex, ok := strings.CutPrefix(r.URL.Path, blobPath)
		s.mu.Lock()
		b, found := s.data[hex]
		s.hits[hex]++
		stall := s.stall != "" && hex == s.stall
		s.mu.Unlock()
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		if stall {
			w.Write(b[:1])
			w.(http.Flusher).Flush()
			close(s.stalled)
			<-r.Context().Done()
			return
		}
		w.Write(b)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// put serves b as the blob hex, which need not be its sha256.
func (s *blobServer) put(hex string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[hex] = b
}

// putBlob serves b under its sha256 and returns it.
func (s *blobServer) putBlob(b []byte) string {
	h := sha256Hex(b)
	s.put(h, b)
	return h
}

// got reports how many times blob hex was asked for.
func (s *blobServer) got(hex string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[hex]
}

// rootTarget serves root and returns the Target that names it.
func (s *blobServer) rootTarget(t *testing.T, root []byte) annotations.Target {
	return mustTarget(t, digestOf(root), s.srv.URL+blobPath+s.putBlob(root))
}

// tree is a delta release's files: path -> content; an executable's path
// ends in "*", which is not part of it.
type tree map[string]string

// built is a delta release made by manifest.Build.
type built struct {
	target  annotations.Target
	root    []byte
	parts   []manifest.Part
	entries []manifest.Entry
}

// partBytes is how many bytes of b's parts are not among old's.
func (b built) partBytes(old built) int64 {
	had := map[string]bool{}
	for _, p := range old.parts {
		had[p.Hex] = true
	}
	var n int64
	for _, p := range b.parts {
		if !had[p.Hex] {
			n += int64(len(p.Data))
		}
	}
	return n
}

// release builds the delta release of files and serves its root, parts
// and files.
func (s *blobServer) release(t *testing.T, files tree) built {
	t.Helper()
	var es []manifest.Entry
	for _, p := range slices.Sorted(maps.Keys(files)) {
		e := manifest.Entry{Path: strings.TrimSuffix(p, "*"), Mode: manifest.ModeFile, Size: int64(len(files[p]))}
		if strings.HasSuffix(p, "*") {
			e.Mode = manifest.ModeExec
		}
		e.Hex = s.putBlob([]byte(files[p]))
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b manifest.Entry) int { return strings.Compare(a.Path, b.Path) })
	root, parts, err := manifest.Build(es)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		s.putBlob(p.Data)
	}
	return built{target: s.rootTarget(t, root), root: root, parts: parts, entries: es}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// bigTree has n files of about 100 bytes, each its own, in a few
// directories, and an executable.
func bigTree(n int, v string) tree {
	files := tree{"bin/run*": "#!/bin/sh\necho " + v + "\n"}
	for i := range n {
		files[fmt.Sprintf("src/%c/f%03d.js", 'a'+i%5, i)] = fmt.Sprintf("%090d %s", i, v)
	}
	return files
}

// checkTree asserts that releases/<hex> holds exactly files, with their
// modes, and that every file has the fixed mtime of a delta release.
func checkTree(t *testing.T, ws string, tg annotations.Target, files tree) {
	t.Helper()
	dir := filepath.Join(ws, sidecar.ReleasesDir, hexOf(tg.Digest))
	want := map[string]string{}
	for p, c := range files {
		want[strings.TrimSuffix(p, "*")] = c
	}
	got := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if fi.Mode().Perm() != 0o755 {
				t.Errorf("%s: directory mode %v, want 0755", rel, fi.Mode().Perm())
			}
			return nil
		}
		got[rel] = true
		content, ok := want[rel]
		if !ok {
			t.Errorf("%s: not in the release", rel)
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if string(b) != content {
			t.Errorf("%s: %q, want %q", rel, b, content)
		}
		mode := fs.FileMode(0o644)
		if _, exec := files[rel+"*"]; exec {
			mode = 0o755
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), mode)
		}
		if !fi.ModTime().Equal(time.Unix(1, 0)) {
			t.Errorf("%s: mtime %v, want the Unix epoch's second 1", rel, fi.ModTime())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d files in the release, want %d", len(got), len(want))
	}
}

// with returns files with changes applied; an empty content removes the path.
func with(files tree, changes tree) tree {
	out := maps.Clone(files)
	for p, c := range changes {
		if c == "" {
			delete(out, p)
		} else {
			out[p] = c
		}
	}
	return out
}

func treeBytes(files tree) int64 {
	var n int64
	for _, c := range files {
		n += int64(len(c))
	}
	return n
}

func TestApplyDelta(t *testing.T) {
	v1 := bigTree(200, "1")
	cases := []struct {
		name string
		// before is what is published first: a delta release, an archive
		// (archive), or nothing.
		before  tree
		archive bool
		// edit changes a file of the release published before, as an app
		// writing to its own files would.
		edit   string
		next   tree
		reused int
		// changed are the files that must be downloaded.
		changed []string
	}{
		{name: "empty workspace", next: v1, changed: slices.Collect(maps.Keys(v1))},
		{name: "one file changed", before: v1, next: with(v1, tree{"src/a/f000.js": "new content"}), reused: len(v1) - 1, changed: []string{"src/a/f000.js"}},
		{name: "one file changed of an archive", before: v1, archive: true, next: with(v1, tree{"src/a/f000.js": "new"}), changed: slices.Collect(maps.Keys(with(v1, tree{"src/a/f000.js": "new"})))},
		{name: "a file edited in place", before: v1, edit: "src/a/f000.js", next: with(v1, tree{"bin/run*": "#!/bin/sh\necho 2\n"}), reused: len(v1) - 2, changed: []string{"bin/run*", "src/a/f000.js"}},
		{name: "a file added and one removed", before: v1, next: with(v1, tree{"new.js": "n", "src/a/f000.js": ""}), reused: len(v1) - 1, changed: []string{"new.js"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			s := newBlobServer(t)
			var prev built
			if tc.before != nil {
				if tc.archive {
					var es []entry
					for p, c := range tc.before {
						es = append(es, file(strings.TrimSuffix(p, "*"), c))
					}
					prev.target = f.target("/prev.tgz", tgz(t, es...))
				} else {
					prev = s.release(t, tc.before)
				}
				if _, err := f.apply(prev.target, release.Limits{}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.edit != "" {
				p := filepath.Join(f.dir, sidecar.ReleasesDir, hexOf(prev.target.Digest), tc.edit)
				if err := os.WriteFile(p, []byte(strings.Repeat("y", len(tc.before[tc.edit]))), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			next := s.release(t, tc.next)
			want := int64(len(next.root))
			for _, p := range tc.changed {
				want += int64(len(tc.next[p]))
			}
			if tc.reused == 0 {
				prev = built{}
			}
			want += next.partBytes(prev)
			hits := map[string]int{}
			for _, p := range tc.changed {
				hits[p] = s.got(sha256Hex([]byte(tc.next[p])))
			}
			res, err := f.apply(next.target, release.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			wantRes := release.Result{Digest: next.target.Digest, Bytes: treeBytes(tc.next), Files: len(tc.next), Downloaded: want, Source: refresh.SourceDelta, Reused: tc.reused}
			if res != wantRes {
				t.Errorf("Result = %+v\nwant     %+v", res, wantRes)
			}
			if got := f.ws.Current(); got != next.target.Digest {
				t.Fatalf("Current() = %q, want %q", got, next.target.Digest)
			}
			checkTree(t, f.dir, next.target, tc.next)
			for _, p := range tc.changed {
				if n := s.got(sha256Hex([]byte(tc.next[p]))) - hits[p]; n != 1 {
					t.Errorf("%s was downloaded %d times, want once", p, n)
				}
			}
			f.checkClean()
		})
	}
}

// TestDeltaRepublish: a delta release still on disk is published again
// without a download, and the manifests of pruned releases go with them.
func TestDeltaRepublish(t *testing.T) {
	f := newFixture(t)
	s := newBlobServer(t)
	var rels []built
	for _, v := range []string{"1", "2", "3", "4"} {
		r := s.release(t, bigTree(100, v))
		if _, err := f.apply(r.target, release.Limits{}); err != nil {
			t.Fatal(err)
		}
		rels = append(rels, r)
		f.ws.Pin(r.target.Digest)
	}
	if f.ws.Has(rels[0].target.Digest) {
		t.Fatal("the oldest release was not pruned")
	}
	res, err := f.apply(rels[1].target, release.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != refresh.SourceDisk || res.Downloaded != 0 || res.Files != 101 || f.ws.Current() != rels[1].target.Digest {
		t.Errorf("republish: %+v, current %s", res, f.ws.Current())
	}
	if s.got(hexOf(rels[1].target.Digest)) != 1 {
		t.Error("the republished release's root was downloaded again")
	}
	if err := f.ws.Rollback(rels[3].target.Digest); err != nil {
		t.Fatal(err)
	}
	checkTree(t, f.dir, rels[3].target, bigTree(100, "4"))
	f.wait()

	roots, err := os.ReadDir(filepath.Join(f.dir, "manifests", "roots"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range roots {
		names = append(names, e.Name())
	}
	var want []string
	named := map[string]bool{}
	for _, r := range rels[1:] {
		want = append(want, hexOf(r.target.Digest))
		for _, p := range r.parts {
			named[p.Hex] = true
		}
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("roots kept: %v, want those of the releases on disk %v", names, want)
	}
	parts, err := os.ReadDir(filepath.Join(f.dir, "manifests", "parts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range parts {
		if !named[e.Name()] {
			t.Errorf("part %s is kept, which no kept root names", e.Name())
		}
		delete(named, e.Name())
	}
	if len(named) > 0 {
		t.Errorf("%d parts of kept roots are gone", len(named))
	}
}

// TestDeltaCancel cancels an Apply while a file of a delta release is
// being downloaded: it must return at once, with the cause, and publish
// nothing.
func TestDeltaCancel(t *testing.T) {
	f := newFixture(t)
	s := newBlobServer(t)
	prev := s.release(t, tree{"a.js": "1"})
	if _, err := f.apply(prev.target, release.Limits{}); err != nil {
		t.Fatal(err)
	}
	files := bigTree(50, "2")
	s.mu.Lock()
	s.stall = sha256Hex([]byte(files["bin/run*"]))
	s.mu.Unlock()
	next := s.release(t, files)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled time.Time
	go func() {
		<-s.stalled
		time.Sleep(50 * time.Millisecond)
		cancelled = time.Now()
		cancel()
	}()
	_, err := f.ws.Apply(ctx, f.client, next.target, release.Limits{})
	took := time.Since(cancelled)
	t.Logf("Apply returned %s after it was cancelled", took.Round(time.Millisecond))
	if took > 200*time.Millisecond {
		t.Errorf("Apply returned %s after it was cancelled", took)
	}
	if release.ReasonOf(err) != refresh.ReasonDownload || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want a download error wrapping context.Canceled", err)
	}
	if f.ws.Current() != prev.target.Digest || f.ws.Has(next.target.Digest) {
		t.Errorf("Current() = %s, want %s and nothing published", f.ws.Current(), prev.target.Digest)
	}
	f.checkClean()
}

// TestDeltaOverOCI: an OCI artifact is always an archive.
func TestDeltaOverOCI(t *testing.T) {
	f := newFixture(t)
	s := newBlobServer(t)
	r := s.release(t, tree{"a.js": "1"})
	reg := ociregistry.Start(t, "", "")
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, oci.ManifestMediaType), oci.ConfigMediaType)
	img, err := mutate.AppendLayers(img, static.NewLayer(r.root, oci.ContentMediaType))
	if err != nil {
		t.Fatal(err)
	}
	tg := mustTarget(t, r.target.Digest, push(t, reg, "ns/app", img))
	_, err = f.apply(tg, release.Limits{})
	if release.ReasonOf(err) != refresh.ReasonManifest || !strings.Contains(err.Error(), "artifact URL") {
		t.Errorf("error %v, want bad_manifest saying a delta release needs a URL", err)
	}
	f.checkClean()
}

// TestDeltaDamagedManifests: what the workspace keeps of a release's
// manifest is checked again when it is read, because the app shares the
// volume; a damaged root or part gives no file and is downloaded again.
func TestDeltaDamagedManifests(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, ws string, r built)
		// maxReused is how many files may still be reused.
		maxReused int
	}{
		{"a part", func(t *testing.T, ws string, r built) {
			write(t, filepath.Join(ws, "manifests", "parts", r.parts[0].Hex), manifest.PartMagic)
		}, 0},
		{"a root", func(t *testing.T, ws string, r built) {
			write(t, filepath.Join(ws, "manifests", "roots", hexOf(r.target.Digest)), string(r.root[:len(r.root)-1]))
		}, 0},
		{"nothing", func(*testing.T, string, built) {}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			s := newBlobServer(t)
			v1 := s.release(t, bigTree(200, "1"))
			if _, err := f.apply(v1.target, release.Limits{}); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, f.dir, v1)
			files := with(bigTree(200, "1"), tree{"bin/run*": "#!/bin/sh\n"})
			v2 := s.release(t, files)
			res, err := f.apply(v2.target, release.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			checkTree(t, f.dir, v2.target, files)
			if res.Reused > tc.maxReused {
				t.Errorf("reused %d files, want at most %d", res.Reused, tc.maxReused)
			}
			if tc.maxReused == 0 && res.Reused != 0 {
				t.Errorf("reused %d files from a damaged manifest", res.Reused)
			}
			if tc.maxReused > 0 && res.Reused != tc.maxReused {
				t.Errorf("reused %d files, want %d", res.Reused, tc.maxReused)
			}
		})
	}
}

func write(t *testing.T, file, content string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
