package release_test

import (
	"archive/tar"
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// FuzzExtract feeds arbitrary bytes as the artifact, with their own digest
// so that the checksum passes and extraction runs on everything. Apply must
// not panic, must fail only with a reason from the enum, and must never
// write outside the workspace.
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
		checkClean(t, parent, dir)
	})
}
