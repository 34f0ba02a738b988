package release_test

import (
	"archive/tar"
	"context"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// FuzzExtract feeds arbitrary bytes as the artifact, with their own digest
// so that the checksum passes and extraction runs on everything. Apply must
// not panic, must fail only with a reason from the enum, must never write
// outside the workspace, and a release it publishes must be within the caps
// on disk. testdata/fuzz/FuzzExtract keeps the hostile archives of issue 13
// (hostile_test.go builds them), which got past those caps.
func FuzzExtract(f *testing.F) {
	f.Add(app(f, "seed"))
	f.Add(tgz(f, file("../x", "evil")))
	f.Add(tgz(f, file("/abs", "evil")))
	f.Add(tgz(f, entry{Header: tar.Header{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../.."}}, file("up/x", "evil")))
	f.Add(tgz(f, entry{Header: tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "x"}}))
	f.Add(tgz(f, entry{Header: tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}))
	f.Add(tgz(f, file("a", "1"), dir("a/"), file("a/b", "2")))
	f.Add(tgz(f, file(".", "root as a file")))
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"))
	f.Add([]byte{})
	valid := []refresh.Reason{
		refresh.ReasonSizeLimit, refresh.ReasonUnsafePath, refresh.ReasonUnsupportedEntry, refresh.ReasonExtract,
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "ws")
		ws, err := release.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		tg := mustTarget(t, digestOf(b), "http://artifacts.invalid/a.tgz")
		client := &http.Client{Transport: memTransport{b}}
		lim := release.Limits{MaxBytes: 1 << 20, MaxEntries: 1000}
		_, err = ws.Apply(context.Background(), client, tg, lim)
		if err == nil {
			if got := ws.Current(); got != tg.Digest {
				t.Errorf("Current() = %q after success, want %q", got, tg.Digest)
			}
			checkCaps(t, filepath.Join(dir, sidecar.ReleasesDir, tg.Hex), lim.MaxBytes)
		} else {
			r := release.ReasonOf(err)
			ok := false
			for _, v := range valid {
				ok = ok || r == v
			}
			if !ok {
				t.Errorf("reason %q for %v", r, err)
			}
			if ws.Current() != "" {
				t.Errorf("published despite %v", err)
			}
		}
		if err := ws.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		checkClean(t, parent, dir)
	})
}

// checkCaps fails unless the release at root takes at most maxBytes as
// Limits counts them and no path in it is deeper than MaxPathDepth.
func checkCaps(t *testing.T, root string, maxBytes int64) {
	t.Helper()
	var used int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if depth := strings.Count(rel, "/") + 1; depth > release.MaxPathDepth {
			t.Errorf("%s is %d levels deep", rel[:64], depth)
			return filepath.SkipDir
		}
		used += release.BlockSize
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() && fi.Size() > release.BlockSize {
			used += (fi.Size() - 1) / release.BlockSize * release.BlockSize
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if used > maxBytes {
		t.Errorf("the release takes %d bytes in blocks of %d, over the cap of %d", used, release.BlockSize, maxBytes)
	}
}
