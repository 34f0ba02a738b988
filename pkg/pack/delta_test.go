package pack

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
)

func TestDelta(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, age time.Duration) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Now().Add(-age)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	write("server.js", "v1", time.Hour)
	write("lib/a.js", "same", time.Hour)
	write("lib/b.js", "same", time.Hour)
	write(".env", "SECRET=1", time.Hour)
	write("new.js", "n1", 0)

	var hashes Hashes
	r, err := Delta(dir, Options{}, &hashes)
	if err != nil {
		t.Fatal(err)
	}
	if r.Digest != digest.Of(r.Root) || !manifest.IsRoot(r.Root) {
		t.Fatalf("digest %s is not the sha256 of a root", r.Digest)
	}
	if r.Count != 4 || len(r.Files) != 3 {
		t.Errorf("%d files, %d contents; want 4 files (no .env), 3 contents (two are the same)", r.Count, len(r.Files))
	}
	if s := r.Secrets(); len(s) != 1 || s[0] != ".env" {
		t.Errorf("secrets left out: %q", s)
	}
	for _, h := range []string{r.Parts[0].Hex, digest.Of([]byte("same"))[len(digest.Prefix):]} {
		if _, open, ok := r.Open(h); !ok {
			t.Errorf("Open does not find %s", h)
		} else if f, err := open(); err != nil {
			t.Error(err)
		} else {
			f.Close()
		}
	}
	if _, _, ok := r.Open(digest.Of([]byte("other"))[len(digest.Prefix):]); ok {
		t.Errorf("Open finds what the release does not have")
	}
	if _, ok := hashes.m[filepath.Join(dir, "new.js")]; ok {
		t.Errorf("a file saved just now is cached: a second save within the mtime's granularity would be missed")
	}
	if _, ok := hashes.m[filepath.Join(dir, "server.js")]; !ok {
		t.Errorf("an old file is not cached")
	}
	again, err := Delta(dir, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != r.Digest {
		t.Errorf("the same tree has two digests")
	}
	// A new save of the young file, same size: hashed again.
	write("new.js", "n2", 0)
	changed, err := Delta(dir, Options{}, &hashes)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Digest == r.Digest {
		t.Errorf("a changed file of the same size did not change the digest")
	}
}
