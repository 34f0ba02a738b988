package pack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeTree writes files (path -> content) under dir in the given order;
// a content of "/" makes a directory.
func writeTree(t *testing.T, dir string, files map[string]string, order []string) {
	t.Helper()
	for _, name := range order {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if files[name] == "/" {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// entries lists the tar entries of a, failing on any header field that is
// not fixed.
func entries(t *testing.T, a *Artifact) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(a.Data))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header has name %q, mtime %s", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %s, owner %d/%d %q/%q", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		names = append(names, h.Name)
	}
}

func TestDirIsDeterministic(t *testing.T) {
	files := map[string]string{
		"server.js":       "require('./lib/a')",
		"lib/":            "/",
		"lib/a.js":        "module.exports = 1",
		"lib/b.js":        "module.exports = 2",
		"a.js":            "// sorts before a/ and after it",
		"a/z.js":          "z",
		"public/":         "/",
		"public/empty/":   "/",
		"package.json":    `{"name":"x"}`,
		"deep/er/file.js": "1",
	}
	forward := sortedKeys(files)
	backward := slices.Clone(forward)
	slices.Reverse(backward)

	base := t.TempDir()
	writeTree(t, base, files, forward)
	want, err := Dir(base, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want.Files != 7 {
		t.Errorf("%d files, want 7", want.Files)
	}

	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		same   bool
	}{
		{"created in reverse order", func(t *testing.T, dir string) {}, true},
		{"different mtimes", func(t *testing.T, dir string) {
			old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
			for _, n := range forward {
				if err := os.Chtimes(filepath.Join(dir, n), old, old); err != nil {
					t.Fatal(err)
				}
			}
		}, true},
		{"group and other write bits", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "server.js"), 0o666); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"ignored file added", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{"node_modules/x/index.js": "x", ".git/HEAD": "ref"}, []string{"node_modules/x/index.js", ".git/HEAD"})
		}, true},
		{"one byte changed", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{"lib/b.js": "module.exports = 3"}, []string{"lib/b.js"})
		}, false},
		{"file renamed", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "lib/b.js"), filepath.Join(dir, "lib/c.js")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"executable bit set", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "server.js"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"empty directory added", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{"tmp/": "/"}, []string{"tmp/"})
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, files, backward)
			tt.change(t, dir)
			got, err := Dir(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if same := got.Digest == want.Digest; same != tt.same {
				t.Errorf("digest %s vs %s: same=%v, want %v\nentries %q\nwant    %q", got.Digest, want.Digest, same, tt.same, entries(t, got), entries(t, want))
			}
		})
	}
	if got := entries(t, want); !slices.Equal(got, []string{
		"a/", "a/z.js", "a.js", "deep/", "deep/er/", "deep/er/file.js", "lib/", "lib/a.js", "lib/b.js",
		"package.json", "public/", "public/empty/", "server.js",
	}) {
		t.Errorf("entries %q", got)
	}
}

func TestDirIgnoreRules(t *testing.T) {
	tree := map[string]string{
		"server.js":              "s",
		"debug.log":              "l",
		"logs/today.log":         "l",
		"keep.log":               "k",
		"build/out.js":           "b",
		"src/build/keep.js":      "k",
		"src/a.test.js":          "t",
		"src/a.js":               "a",
		"node_modules/m/i.js":    "m",
		"lib/node_modules/n.js":  "n",
		".git/config":            "c",
		"sub/.git/HEAD":          "h",
		"docs/":                  "/",
		"x1.tmp":                 "1",
		"x22.tmp":                "2",
		".devhotignore.d/ok.txt": "o",
	}
	tests := []struct {
		name    string
		ignore  string
		options Options
		want    []string
	}{
		{
			name: "defaults only",
			want: []string{".devhotignore.d/", ".devhotignore.d/ok.txt", "build/", "build/out.js", "debug.log", "docs/", "keep.log",
				"lib/", "logs/", "logs/today.log", "server.js", "src/", "src/a.js", "src/a.test.js", "src/build/", "src/build/keep.js",
				"sub/", "x1.tmp", "x22.tmp"},
		},
		{
			name:   "globs, negation, anchored dirs, ? and comments",
			ignore: "# comment\n*.log\n!keep.log\n/build/\n**/*.test.js\nx?.tmp\ndocs\n\n",
			// logs/ stays, as an empty directory: a rule for *.log is not one for logs/.
			want: []string{".devhotignore", ".devhotignore.d/", ".devhotignore.d/ok.txt", "keep.log", "lib/", "logs/", "server.js",
				"src/", "src/a.js", "src/build/", "src/build/keep.js", "sub/", "x22.tmp"},
		},
		{
			name:    "include node_modules",
			options: Options{IncludeNodeModules: true},
			ignore:  "*.log\n*.tmp\n.devhotignore*\nbuild\ndocs/\nsrc/\n",
			want: []string{"lib/", "lib/node_modules/", "lib/node_modules/n.js", "logs/", "node_modules/", "node_modules/m/",
				"node_modules/m/i.js", "server.js", "sub/"},
		},
		{
			name:   "node_modules brought back by the ignore file, .git never",
			ignore: "!node_modules/\n!.git\n*.log\n*.tmp\ndocs\n.devhotignore*\n",
			want: []string{"build/", "build/out.js", "lib/", "lib/node_modules/", "lib/node_modules/n.js", "logs/", "node_modules/",
				"node_modules/m/", "node_modules/m/i.js", "server.js", "src/", "src/a.js", "src/a.test.js", "src/build/",
				"src/build/keep.js", "sub/"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tree, sortedKeys(tree))
			if tt.ignore != "" {
				writeTree(t, dir, map[string]string{IgnoreFile: tt.ignore}, []string{IgnoreFile})
			}
			a, err := Dir(dir, tt.options)
			if err != nil {
				t.Fatal(err)
			}
			if got := entries(t, a); !slices.Equal(got, tt.want) {
				t.Errorf("packed\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestDirRefusesWhatTheFetcherRefuses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		wantErr []string // substrings; none means success
	}{
		{"symlink to a file", func(t *testing.T, dir string) {
			if err := os.Symlink("server.js", filepath.Join(dir, "lib", "link.js")); err != nil {
				t.Fatal(err)
			}
		}, []string{"lib/link.js is a symlink", `"server.js"`, "unsafe_path", IgnoreFile}},
		{"symlink to a directory", func(t *testing.T, dir string) {
			if err := os.Symlink("/etc", filepath.Join(dir, "etc")); err != nil {
				t.Fatal(err)
			}
		}, []string{"etc is a symlink", `"/etc"`}},
		{"ignored symlink", func(t *testing.T, dir string) {
			if err := os.Symlink("server.js", filepath.Join(dir, "lib", "link.js")); err != nil {
				t.Fatal(err)
			}
			writeTree(t, dir, map[string]string{IgnoreFile: "lib/link.js\n"}, []string{IgnoreFile})
		}, nil},
		{"symlink inside node_modules", func(t *testing.T, dir string) {
			if err := os.MkdirAll(filepath.Join(dir, "node_modules", ".bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../x/cli.js", filepath.Join(dir, "node_modules", ".bin", "x")); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"named pipe", func(t *testing.T, dir string) {
			if err := mkfifo(filepath.Join(dir, "pipe")); err != nil {
				t.Fatal(err)
			}
		}, []string{"pipe is a", "unsupported_entry"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"server.js": "s", "lib/a.js": "a"}, []string{"server.js", "lib/a.js"})
			tt.setup(t, dir)
			_, err := Dir(dir, Options{})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("packed, want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestDirBadInput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	writeTree(t, filepath.Dir(file), map[string]string{"f": "x"}, []string{"f"})
	tests := []struct {
		name, dir, want string
	}{
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such file"},
		{"a file", file, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Dir(tt.dir, Options{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDirFollowsASymlinkedRoot(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"app/server.js": "s"}, []string{"app/server.js"})
	link := filepath.Join(dir, "link")
	if err := os.Symlink("app", link); err != nil {
		t.Fatal(err)
	}
	a, err := Dir(link, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := entries(t, a); !slices.Equal(got, []string{"server.js"}) {
		t.Errorf("entries %q", got)
	}
}

// TestGitignoreAndSecrets: every .gitignore counts, as git reads them
// (nested ones relative to their directory, negation, none read inside a
// directory left out), .devhotignore comes last, and files that look like
// secrets are never packed unless .devhotignore names them.
func TestGitignoreAndSecrets(t *testing.T) {
	tree := map[string]string{
		"server.js":                 "s",
		".env":                      "DB_PASSWORD=hunter2",
		".env.local":                "x",
		".env.example":              "DB_PASSWORD=",
		".npmrc":                    "//registry.npmjs.org/:_authToken=npm_x",
		"certs/tls.key":             "k",
		"certs/tls.pem":             "p",
		"certs/README":              "r",
		".ssh/id_ed25519":           "k",
		"dist/out.js":               "d",
		"coverage/lcov.info":        "c",
		"src/a.js":                  "a",
		"src/gen/schema.js":         "g",
		"src/gen/keep.js":           "k",
		"src/.gitignore":            "gen/\n",
		"tmp/.gitignore":            "!*\n",
		"tmp/junk.txt":              "j",
		"lib/.gitignore":            "*.map\n!keep.map\n",
		"lib/x.js":                  "x",
		"lib/x.js.map":              "m",
		"lib/keep.map":              "k",
		".gitignore":                "dist/\ncoverage\ntmp/\n.env*\n",
		"node_modules/.gitignore":   "!*\n",
		"node_modules/m/index.js":   "m",
		"packages/app/.gitignore":   "/build\n",
		"packages/app/build/o.js":   "o",
		"packages/app/src/build.js": "b",
	}
	tests := []struct {
		name   string
		devhot string
		want   []string          // packed entries
		why    map[string]string // path -> substring of its Why
	}{
		{
			name: "gitignore and secrets",
			want: []string{".gitignore", ".ssh/", "certs/", "certs/README", "lib/", "lib/.gitignore", "lib/keep.map", "lib/x.js",
				"packages/", "packages/app/", "packages/app/.gitignore", "packages/app/src/", "packages/app/src/build.js",
				"server.js", "src/", "src/.gitignore", "src/a.js"},
			why: map[string]string{
				"dist":               "gitignore:1: dist/",
				"coverage":           ".gitignore:2: coverage",
				"tmp":                ".gitignore:3: tmp/",
				".env":               "looks like a secret (.env*); to pack it, add !.env to .devhotignore",
				".env.example":       "looks like a secret (.env*)",
				".npmrc":             "looks like a secret (.npmrc)",
				"certs/tls.key":      "looks like a secret (*.key)",
				"certs/tls.pem":      "looks like a secret (*.pem)",
				".ssh/id_ed25519":    "looks like a secret (id_*)",
				"src/gen":            "src/.gitignore:1: gen/",
				"lib/x.js.map":       "lib/.gitignore:1: *.map",
				"node_modules":       "default: node_modules/",
				"packages/app/build": "packages/app/.gitignore:1: /build",
			},
		},
		{
			name:   "a secret comes back only by name",
			devhot: "!.env.example\n!*.pem\n!certs/\n",
			want: []string{".env.example", ".gitignore", ".ssh/", "certs/", "certs/README", "lib/", "lib/.gitignore", "lib/keep.map", "lib/x.js",
				"packages/", "packages/app/", "packages/app/.gitignore", "packages/app/src/", "packages/app/src/build.js",
				"server.js", "src/", "src/.gitignore", "src/a.js"},
			why: map[string]string{"certs/tls.pem": "looks like a secret (*.pem)", ".env": "looks like a secret"},
		},
		{
			name:   ".devhotignore overrides .gitignore",
			devhot: "!dist/\nsrc/a.js\n",
			want: []string{".gitignore", ".ssh/", "certs/", "certs/README", "dist/", "dist/out.js", "lib/", "lib/.gitignore", "lib/keep.map", "lib/x.js",
				"packages/", "packages/app/", "packages/app/.gitignore", "packages/app/src/", "packages/app/src/build.js",
				"server.js", "src/", "src/.gitignore"},
			why: map[string]string{"src/a.js": ".devhotignore:2: src/a.js"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tree, sortedKeys(tree))
			want := tt.want
			if tt.devhot != "" {
				writeTree(t, dir, map[string]string{IgnoreFile: tt.devhot}, []string{IgnoreFile})
				want = append([]string{IgnoreFile}, want...)
			}
			a, err := Dir(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := entries(t, a); !slices.Equal(got, want) {
				t.Errorf("packed\n%q\nwant\n%q", got, want)
			}
			left := map[string]Left{}
			for _, l := range a.Left {
				left[l.Path] = l
			}
			for p, why := range tt.why {
				if l, ok := left[p]; !ok || !strings.Contains(l.Why, why) {
					t.Errorf("%s: left out %v, why %q; want %q", p, ok, l.Why, why)
				}
			}
			for _, s := range a.Secrets() {
				if !left[s].Secret {
					t.Errorf("Secrets() lists %s, which is not left out as a secret", s)
				}
			}
			for _, f := range a.Packed {
				if secretPattern(filepath.Base(f.Path)) != "" && !strings.Contains(tt.devhot, "!"+f.Path) {
					t.Errorf("packed %s, a secret not named in %s", f.Path, IgnoreFile)
				}
			}
		})
	}
}

// TestOnly packs a build's output at its place, with package.json, the
// .gitignore that lists it notwithstanding; secrets stay out.
func TestOnly(t *testing.T) {
	tree := map[string]string{
		".gitignore":            "dist/\n",
		"package.json":          `{"main":"dist/server.js"}`,
		"package-lock.json":     "{}",
		"src/server.ts":         "s",
		"dist/server.js":        "j",
		"dist/server.js.map":    "m",
		"dist/.env":             "SECRET=1",
		"public/assets/app.css": "c",
		"public/index.html":     "i",
		"node_modules/x/i.js":   "x",
	}
	dir := t.TempDir()
	writeTree(t, dir, tree, sortedKeys(tree))
	a, err := Dir(dir, Options{Only: []string{"dist", "public/assets"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"dist/", "dist/server.js", "dist/server.js.map", "package.json", "public/", "public/assets/", "public/assets/app.css"}
	if got := entries(t, a); !slices.Equal(got, want) {
		t.Errorf("packed\n%q\nwant\n%q", got, want)
	}
	if s := a.Secrets(); !slices.Equal(s, []string{"dist/.env"}) {
		t.Errorf("secrets left out %q, want dist/.env", s)
	}
	if _, err := Dir(dir, Options{Only: []string{"build"}}); err == nil || !strings.Contains(err.Error(), "build, which is to be packed, does not exist (did the build make it?)") {
		t.Errorf("a missing output: %v", err)
	}
}

// TestWalkListsWhatDirPacks: a delta release and an archive of one tree
// hold the same files, under the same rules, with the same modes.
func TestWalkListsWhatDirPacks(t *testing.T) {
	tree := map[string]string{
		".gitignore":          "*.log\n",
		".env":                "SECRET=1",
		"a.log":               "l",
		"bin/run":             "#!/bin/sh",
		"empty/":              "/",
		"node_modules/x/i.js": "x",
		"server.js":           "s",
		"src/lib/util.js":     "u",
	}
	for _, o := range []Options{{}, {Only: []string{"src"}}, {IncludeNodeModules: true}} {
		dir := t.TempDir()
		writeTree(t, dir, tree, sortedKeys(tree))
		if err := os.Chmod(filepath.Join(dir, "bin", "run"), 0o755); err != nil {
			t.Fatal(err)
		}
		a, err := Dir(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		w, err := Walk(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		var packed, walked []string
		for _, f := range a.Packed {
			packed = append(packed, f.Path)
		}
		for _, f := range w.Files {
			walked = append(walked, f.Path)
			if f.Exec != (f.Path == "bin/run") {
				t.Errorf("%+v: %s exec %v", o, f.Path, f.Exec)
			}
		}
		if !slices.Equal(packed, walked) {
			t.Errorf("%+v: Walk lists %q, Dir packs %q", o, walked, packed)
		}
		if !slices.Equal(a.Secrets(), w.Secrets()) {
			t.Errorf("%+v: Walk leaves out secrets %q, Dir %q", o, w.Secrets(), a.Secrets())
		}
	}
}
