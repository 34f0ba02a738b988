package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
	"github.com/aether-dev/aether-devhot/pkg/pack"
)

func TestBuildDelta(t *testing.T) {
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

	cache := hashCache{}
	r, err := buildDelta(dir, pack.Options{}, cache)
	if err != nil {
		t.Fatal(err)
	}
	if r.digest != digest.Of(r.root) || !manifest.IsRoot(r.root) {
		t.Fatalf("digest %s is not the sha256 of a root", r.digest)
	}
	if r.count != 4 || len(r.files) != 3 {
		t.Errorf("%d files, %d contents; want 4 files (no .env), 3 contents (two are the same)", r.count, len(r.files))
	}
	if len(r.secrets) != 1 || r.secrets[0] != ".env" {
		t.Errorf("secrets left out: %q", r.secrets)
	}
	if _, ok := cache[filepath.Join(dir, "new.js")]; ok {
		t.Errorf("a file saved just now is cached: a second save within the mtime's granularity would be missed")
	}
	if _, ok := cache[filepath.Join(dir, "server.js")]; !ok {
		t.Errorf("an old file is not cached")
	}

	again, err := buildDelta(dir, pack.Options{}, hashCache{})
	if err != nil {
		t.Fatal(err)
	}
	if again.digest != r.digest {
		t.Errorf("the same tree has two digests")
	}
	// A new save of the young file, same size: hashed again.
	write("new.js", "n2", 0)
	changed, err := buildDelta(dir, pack.Options{}, cache)
	if err != nil {
		t.Fatal(err)
	}
	if changed.digest == r.digest {
		t.Errorf("a changed file of the same size did not change the digest")
	}
}
