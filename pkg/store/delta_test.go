package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/manifest"
)

// deltaLimits fit a few small releases: parts of one file are about 100
// bytes.
var deltaLimits = Limits{MaxBlobBytes: 400, MaxTotalBytes: 4000, NamespaceQuotaBytes: 2000, MaxUploads: 4, MaxNamespaceUploads: 2}

// testRelease is a delta release built by manifest.Build.
type testRelease struct {
	root  []byte
	parts []manifest.Part
	files map[string][]byte // by hex
}

func (r testRelease) hex() string { return digestOf(r.root) }

func (r testRelease) partHexes() []string {
	var hs []string
	for _, p := range r.parts {
		hs = append(hs, p.Hex)
	}
	return hs
}

// release builds a release with one file of each content, each in a part
// of its own: every path but the last is one where Build cuts.
func release(t testing.TB, tag string, contents ...string) testRelease {
	t.Helper()
	r := testRelease{files: map[string][]byte{}}
	var entries []manifest.Entry
	for k := 0; len(entries) < len(contents); k++ {
		p := fmt.Sprintf("%s/f%06d", tag, k)
		if sum := sha256.Sum256([]byte(p)); sum[0] >= 256/64 && len(entries) < len(contents)-1 {
			continue
		}
		c := contents[len(entries)]
		h := digestOf([]byte(c))
		r.files[h] = []byte(c)
		entries = append(entries, manifest.Entry{Path: p, Mode: manifest.ModeFile, Size: int64(len(c)), Hex: h})
	}
	root, parts, err := manifest.Build(entries)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != len(contents) {
		t.Fatalf("%d parts for %d files", len(parts), len(contents))
	}
	r.root, r.parts = root, parts
	return r
}

// tarEntry is one tarEntry of a children body.
type tarEntry struct {
	name string
	data []byte
}

// tarGz is a children body of entries.
func tarGz(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func missingJSON(t testing.TB, parts, files []string) string {
	t.Helper()
	b, err := json.Marshal(Missing{Parts: append([]string{}, parts...), Files: append([]string{}, files...)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// TestDeltaHandler pushes a release as kubectl devhot push does: the root,
// then what is missing, in bundles.
func TestDeltaHandler(t *testing.T) {
	big := strings.Repeat("b", 401)
	rel := release(t, "app", "one", "two", "one", big)
	p := rel.partHexes()
	one, two, bigHex := digestOf([]byte("one")), digestOf([]byte("two")), digestOf([]byte(big))
	three := digestOf([]byte("three"))
	ref := BlobRef{"team-a", "web", rel.hex()}
	badRoot := []byte(manifest.RootMagic + "files 1 bytes 1\n")
	archive := gz(t, "an archive")
	a := newFakeAccess()
	a.readers["tok"] = BlobRef{Namespace: "team-a", Deployment: "web"}
	for _, b := range [][]byte{rel.root, badRoot, archive} {
		a.announce(BlobRef{"team-a", "web", digestOf(b)})
	}
	blob := func(h string) string { return BlobRef{"team-a", "web", h}.Path() }
	archiveRef := BlobRef{"team-a", "web", digestOf(archive)}
	part := func(i int) tarEntry { return tarEntry{p[i], rel.parts[i].Data} }
	tests := []struct {
		name, method, path string
		body               []byte
		token              string
		want               int
		wantBody, wantType string
	}{
		{"missing before the root", "GET", ref.MissingPath(), nil, "", 404, "no root", ""},
		{"children before the root", "POST", ref.ChildrenPath(), tarGz(t, part(0)), "", 404, "", ""},
		{"a malformed root", "PUT", blob(digestOf(badRoot)), badRoot, "", 400, "malformed manifest: the parts list 0 files, the root says 1", ""},
		{"the malformed root is not stored", "GET", blob(digestOf(badRoot)), nil, "tok", 404, "", ""},
		{"a root", "PUT", ref.Path(), rel.root, "", 201, "", ""},
		{"a root again", "PUT", ref.Path(), rel.root, "", 200, "", ""},
		{"a root is text", "GET", ref.Path(), nil, "tok", 200, manifest.RootMagic, "text/plain; charset=utf-8"},
		{"missing lists the parts", "GET", ref.MissingPath(), nil, "", 200, missingJSON(t, p, nil), "application/json"},
		{"missing needs the root asked for", "GET", BlobRef{"team-a", "api", ref.Hex}.MissingPath(), nil, "", 403, "does not ask for", ""},
		{"missing of an archive", "PUT", archiveRef.Path(), archive, "", 201, "", ""},
		{"missing of a blob that is not a root", "GET", archiveRef.MissingPath(), nil, "", 400, "not a delta release's root", ""},
		{"a file before its part", "POST", ref.ChildrenPath(), tarGz(t, tarEntry{one, []byte("one")}), "", 403, "entry \"" + one + "\": not a part or a file of the root", ""},
		{"parts", "POST", ref.ChildrenPath(), tarGz(t, part(0), part(1)), "", 201, `{"stored":2,"bytes":`, "application/json"},
		{"a part is text", "GET", blob(p[0]), nil, "tok", 200, manifest.PartMagic, "text/plain; charset=utf-8"},
		{"missing lists the other parts and the files of those stored", "GET", ref.MissingPath(), nil, "", 200, missingJSON(t, p[2:], []string{one, two}), ""},
		{"a child whose bytes lie", "POST", ref.ChildrenPath(), tarGz(t, tarEntry{one, []byte("two")}), "", 400, "digest mismatch: body has sha256 " + two, ""},
		{"the lie is not stored", "GET", blob(one), nil, "tok", 404, "", ""},
		{"a hex the root does not reference", "POST", ref.ChildrenPath(), tarGz(t, tarEntry{three, []byte("three")}), "", 403, "entry \"" + three + "\": not a part or a file", ""},
		{"a part that is not one", "POST", ref.ChildrenPath(), tarGz(t, tarEntry{p[2], rel.parts[0].Data}), "", 400, "digest mismatch", ""},
		{"children need the root asked for", "POST", BlobRef{"team-a", "api", ref.Hex}.ChildrenPath(), tarGz(t, part(2)), "", 403, "does not ask for", ""},
		{"a body that is not gzip", "POST", ref.ChildrenPath(), []byte("not gzip"), "", 400, "not a .tar.gz", ""},
		{"a truncated body", "POST", ref.ChildrenPath(), tarGz(t, part(2))[:12], "", 400, "", ""},
		{"an tarEntry not named by a digest", "POST", ref.ChildrenPath(), tarGz(t, tarEntry{"index.js", []byte("x")}), "", 400, "want a name of 64 lowercase hex digits", ""},
		{"an tarEntry twice", "POST", ref.ChildrenPath(), tarGz(t, part(2), part(2)), "", 400, "sent twice", ""},
		{"a part with its files", "POST", ref.ChildrenPath(), tarGz(t, part(2), part(3), tarEntry{one, []byte("one")}, tarEntry{two, []byte("two")}), "", 201, `{"stored":3,`, ""},
		{"a file is bytes", "GET", blob(one), nil, "tok", 200, "one", "application/octet-stream"},
		{"a child over the cap", "POST", ref.ChildrenPath(), tarGz(t, tarEntry{bigHex, []byte(big)}), "", 413, "401 bytes, the cap is 400", ""},
		{"missing lists what is left", "GET", ref.MissingPath(), nil, "", 200, missingJSON(t, nil, []string{bigHex}), ""},
		{"children again, already stored", "POST", ref.ChildrenPath(), tarGz(t, tarEntry{one, []byte("one")}), "", 201, `{"stored":0,"bytes":0}`, ""},
		{"put on missing", "PUT", ref.MissingPath(), rel.root, "", 405, "not allowed", ""},
		{"get on children", "GET", ref.ChildrenPath(), nil, "tok", 405, "not allowed", ""},
		{"an archive is gzip", "GET", archiveRef.Path(), nil, "tok", 200, "", "application/gzip"},
	}
	s, srv := newServer(t, deltaLimits, a)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != nil {
				body = bytes.NewReader(tt.body)
			}
			code, got, h := do(t, tt.method, srv.URL+tt.path, body, tt.token)
			if code != tt.want || !strings.Contains(got, tt.wantBody) {
				t.Errorf("%s %s: %d %q, want %d with %q", tt.method, tt.path, code, got, tt.want, tt.wantBody)
			}
			if tt.wantType != "" && h.Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type %q, want %q", h.Get("Content-Type"), tt.wantType)
			}
		})
	}
	if s.Has("team-a", three) || s.Has("team-a", bigHex) {
		t.Error("a refused child was stored")
	}
}

// putRelease stores rel in namespace ns, with the files whose hexes are in
// files (all if nil).
func putRelease(t *testing.T, s *Store, ns string, rel testRelease, files []string) {
	t.Helper()
	if _, err := s.Put(ns, rel.hex(), bytes.NewReader(rel.root), -1); err != nil {
		t.Fatal(err)
	}
	u, err := s.Children(ns, rel.hex())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, p := range rel.parts {
		if _, err := u.Put(p.Hex, bytes.NewReader(p.Data), int64(len(p.Data))); err != nil {
			t.Fatal(err)
		}
	}
	if files == nil {
		for h := range rel.files {
			files = append(files, h)
		}
	}
	for _, h := range files {
		if _, err := u.Put(h, bytes.NewReader(rel.files[h]), -1); err != nil {
			t.Fatal(err)
		}
	}
}

// blobsOf are the root, parts and files of rel.
func blobsOf(rel testRelease) []string {
	hs := append([]string{rel.hex()}, rel.partHexes()...)
	for h := range rel.files {
		hs = append(hs, h)
	}
	return hs
}

// TestDeltaPins: the parts and files of a pinned root outlive eviction;
// those of a root no one pins go like any blob.
func TestDeltaPins(t *testing.T) {
	lim := Limits{MaxBlobBytes: 400, MaxTotalBytes: 4000, NamespaceQuotaBytes: 1500, MaxUploads: 4, MaxNamespaceUploads: 2}
	pinnedRel := release(t, "pinned", "a1", "a2", "a3")
	oldRel := release(t, "old", "b1", "b2", "b3")
	tests := []struct {
		name     string
		pinRoots []testRelease
		kept     []testRelease
		gone     []testRelease
	}{
		{"a pinned root keeps its children", []testRelease{pinnedRel}, []testRelease{pinnedRel}, []testRelease{oldRel}},
		{"no pins, both go", nil, nil, []testRelease{pinnedRel, oldRel}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &pins{}
			for _, r := range tt.pinRoots {
				p.pin("ns", r.hex())
			}
			s, err := Open(t.TempDir(), lim, WithPins(p.pinned))
			if err != nil {
				t.Fatal(err)
			}
			putRelease(t, s, "ns", pinnedRel, nil)
			putRelease(t, s, "ns", oldRel, nil)
			for i := range 15 {
				if _, err := s.Put("ns", digestOf(sized(i, 100)), bytes.NewReader(sized(i, 100)), -1); err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range tt.kept {
				for _, h := range blobsOf(r) {
					if !s.Has("ns", h) {
						t.Errorf("%s evicted", h)
					}
				}
			}
			for _, r := range tt.gone {
				for _, h := range blobsOf(r) {
					if s.Has("ns", h) {
						t.Errorf("%s kept", h)
					}
				}
				if _, err := s.Missing("ns", r.hex()); err == nil {
					t.Errorf("evicted root %s still answers Missing", r.hex())
				}
			}
			if n := len(s.refs.roots) + len(s.refs.parts); n != 4*len(tt.kept) {
				t.Errorf("the index holds %d roots and parts, want %d", n, 4*len(tt.kept))
			}
		})
	}
}

// TestDeltaReopen: Open rebuilds the index from the blobs on disk.
func TestDeltaReopen(t *testing.T) {
	rel := release(t, "app", "one", "two", "three")
	other := release(t, "other", "one", "four")
	one := digestOf([]byte("one"))
	dir := t.TempDir()
	s, err := Open(dir, deltaLimits)
	if err != nil {
		t.Fatal(err)
	}
	putRelease(t, s, "ns", rel, []string{one})
	if _, err := s.Put("ns", other.hex(), bytes.NewReader(other.root), -1); err != nil {
		t.Fatal(err)
	}
	roots := []string{rel.hex(), other.hex()}
	before := map[string]Missing{}
	for _, r := range roots {
		if before[r], err = s.Missing("ns", r); err != nil {
			t.Fatal(err)
		}
	}
	if want := (Missing{Parts: []string{}, Files: []string{digestOf([]byte("two")), digestOf([]byte("three"))}}); !reflect.DeepEqual(before[rel.hex()], want) {
		t.Errorf("Missing = %+v, want %+v", before[rel.hex()], want)
	}
	s2, err := Open(dir, deltaLimits)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roots {
		got, err := s2.Missing("ns", r)
		if err != nil || !reflect.DeepEqual(got, before[r]) {
			t.Errorf("reopened: Missing(%s) = %+v, %v, want %+v", r, got, err, before[r])
		}
	}
	if !reflect.DeepEqual(s2.refs, s.refs) {
		t.Errorf("reopened: index %+v, was %+v", s2.refs, s.refs)
	}
}

// TestClientDelta: the CLI's side, Missing and PutChildren, streamed and
// tried again when the store is busy.
func TestClientDelta(t *testing.T) {
	rel := release(t, "app", "one", "two", "one")
	ref := BlobRef{"team-a", "web", rel.hex()}
	a := newFakeAccess()
	a.announce(ref)
	s, err := Open(t.TempDir(), deltaLimits)
	if err != nil {
		t.Fatal(err)
	}
	h := Handler(s, a, slog.New(slog.DiscardHandler))
	busy := 1
	srv := newPlainServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && busy > 0 {
			busy--
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 10))
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	var last, total int64
	c := &Client{HTTP: http.DefaultClient, Base: srv, Progress: func(sent, size int64) { last, total = sent, size }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	child := func(h string, data []byte) Child {
		return Child{Hex: h, Size: int64(len(data)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
	}
	if err := c.Put(ctx, ref, rel.root); err != nil {
		t.Fatal(err)
	}
	m, err := c.Missing(ctx, ref)
	if err != nil || !reflect.DeepEqual(m, Missing{Parts: rel.partHexes(), Files: []string{}}) {
		t.Fatalf("Missing = %+v, %v, want the parts", m, err)
	}
	var parts []Child
	var size int64
	for _, p := range rel.parts {
		parts = append(parts, child(p.Hex, p.Data))
		size += int64(len(p.Data))
	}
	if err := c.PutChildren(ctx, ref, parts); err != nil {
		t.Fatal(err)
	}
	if busy != 0 || last != size || total != size {
		t.Errorf("busy %d; progress %d of %d, want %d", busy, last, total, size)
	}
	if m, err = c.Missing(ctx, ref); err != nil || len(m.Parts) != 0 || len(m.Files) != 2 {
		t.Fatalf("Missing = %+v, %v, want two files", m, err)
	}
	var files []Child
	for _, h := range m.Files {
		files = append(files, child(h, rel.files[h]))
	}
	if err := c.PutChildren(ctx, ref, files); err != nil {
		t.Fatal(err)
	}
	if m, err = c.Missing(ctx, ref); err != nil || len(m.Parts)+len(m.Files) != 0 {
		t.Errorf("Missing = %+v, %v, want nothing", m, err)
	}
	lie := child(digestOf([]byte("one")), []byte("two"))
	if err := c.PutChildren(ctx, ref, []Child{lie}); err == nil || !strings.Contains(err.Error(), "400 Bad Request") {
		t.Errorf("a child whose bytes lie: %v, want 400", err)
	}
	if _, err := c.Missing(ctx, BlobRef{"team-a", "web", strings.Repeat("0", 64)}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("Missing of a root not asked for: %v, want 403", err)
	}
}

// TestUploadedLine: push's line reads back as it was written, and nothing
// else reads as one.
func TestUploadedLine(t *testing.T) {
	u := Uploaded{Files: 1, OfFiles: 5002, Parts: 1, OfParts: 69, Bytes: 6998}
	if got, ok := ParseUploaded(u.String() + "\n"); !ok || got != u {
		t.Errorf("ParseUploaded(%q) = %+v, %v; want %+v", u.String(), got, ok, u)
	}
	for _, l := range []string{"", "uploaded 1 of 2 files", u.String() + " and more", "packed x: 2 files"} {
		if _, ok := ParseUploaded(l); ok {
			t.Errorf("ParseUploaded(%q) accepted it", l)
		}
	}
}
