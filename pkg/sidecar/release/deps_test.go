package release_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// TestLockfile is the table of what makes a release resolve its packages
// through the dependency cache: a package.json and a lockfile, the first
// of sidecar.Lockfiles present, and no node_modules of its own.
func TestLockfile(t *testing.T) {
	for _, c := range []struct {
		name  string
		files []string
		dirs  []string
		want  string
	}{
		{"npm", []string{"package.json", "package-lock.json"}, nil, "package-lock.json"},
		{"shrinkwrap before package-lock", []string{"package.json", "package-lock.json", "npm-shrinkwrap.json"}, nil, "npm-shrinkwrap.json"},
		{"pnpm", []string{"package.json", "pnpm-lock.yaml"}, nil, "pnpm-lock.yaml"},
		{"yarn", []string{"package.json", "yarn.lock"}, nil, "yarn.lock"},
		{"package-lock before yarn", []string{"package.json", "yarn.lock", "package-lock.json"}, nil, "package-lock.json"},
		{"no lockfile", []string{"package.json"}, nil, ""},
		{"no package.json", []string{"package-lock.json"}, nil, ""},
		{"a lockfile in a subdirectory only", []string{"package.json", "src/package-lock.json"}, nil, ""},
		{"its own node_modules win", []string{"package.json", "package-lock.json"}, []string{"node_modules"}, ""},
		{"a directory named like a lockfile", []string{"package.json"}, []string{"package-lock.json"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range c.dirs {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range c.files {
				p := filepath.Join(dir, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := release.Lockfile(dir)
			if got != c.want || ok != (c.want != "") {
				t.Errorf("Lockfile = %q, %v; want %q", got, ok, c.want)
			}
		})
	}
}

// TestDepsKey: the key is the lockfile's sha256, so that equal lockfiles
// share one entry and any change to one is another.
func TestDepsKey(t *testing.T) {
	if got, _ := release.DepsKey(strings.NewReader("")); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("the key of an empty lockfile is %s, not the sha256 of nothing", got)
	}
	a, err := release.DepsKey(strings.NewReader(`{"lockfileVersion":3}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := release.DepsKey(strings.NewReader(`{"lockfileVersion":3} `))
	if a == b {
		t.Error("two lockfiles that differ by a byte share a key")
	}
	if got := release.DepsLinkTarget(a); got != "../../.aether/deps/"+a+"/node_modules" {
		t.Errorf("DepsLinkTarget = %s", got)
	}
}

// TestApplyLinksDeps: a release with a lockfile is published with its
// node_modules linked to the cache entry of the lockfile's key, relative,
// so that it resolves from releases/<hex> in either container; one
// without, or with node_modules of its own, gets no link.
func TestApplyLinksDeps(t *testing.T) {
	f := newFixture(t)
	lock := `{"name":"shop","lockfileVersion":3,"packages":{"node_modules/ms":{"version":"2.1.3"}}}`
	withLock := f.target("/a.tgz", tgz(t, file("package.json", `{"name":"shop"}`), file("package-lock.json", lock), file("server.js", "require('ms')\n")))
	if _, err := f.apply(withLock, release.Limits{}); err != nil {
		t.Fatal(err)
	}
	key, _ := release.DepsKey(strings.NewReader(lock))
	link := filepath.Join(f.dir, sidecar.ReleasesDir, hexOf(withLock.Digest), "node_modules")
	if got, err := os.Readlink(link); err != nil || got != release.DepsLinkTarget(key) {
		t.Fatalf("node_modules link = %q, %v; want %s", got, err, release.DepsLinkTarget(key))
	}
	if want := filepath.Join(f.dir, sidecar.DepsDir, key, "node_modules"); filepath.Join(filepath.Dir(link), release.DepsLinkTarget(key)) != want {
		t.Errorf("the link does not lead to %s", want)
	}
	without := f.target("/b.tgz", app(t, "2"))
	if _, err := f.apply(without, release.Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(f.dir, sidecar.ReleasesDir, hexOf(without.Digest), "node_modules")); !os.IsNotExist(err) {
		t.Errorf("a release without a lockfile got a node_modules: %v", err)
	}
	own := f.target("/c.tgz", tgz(t, file("package.json", `{}`), file("package-lock.json", lock), file("node_modules/ms/index.js", "module.exports = 1\n")))
	if _, err := f.apply(own, release.Limits{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(f.dir, sidecar.ReleasesDir, hexOf(own.Digest), "node_modules")); err != nil || !fi.IsDir() {
		t.Errorf("a release's own node_modules were replaced: %v", err)
	}
	f.checkClean()
}

// TestBootLockfilesMatch keeps boot.cjs's list of lockfiles, which picks
// the package manager in the app's container, equal to the fetcher's.
func TestBootLockfilesMatch(t *testing.T) {
	b, err := os.ReadFile("boot.cjs")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`const lockfiles = \[([^\]]*)\];`).FindSubmatch(b)
	if m == nil {
		t.Fatal("boot.cjs has no lockfiles list")
	}
	var got []string
	for _, q := range strings.Split(string(m[1]), ",") {
		got = append(got, strings.Trim(strings.TrimSpace(q), "'"))
	}
	if !slices.Equal(got, sidecar.Lockfiles) {
		t.Errorf("boot.cjs's lockfiles %q, the fetcher's %q", got, sidecar.Lockfiles)
	}
}
