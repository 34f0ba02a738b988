package appimage

import (
	"compress/gzip"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// testBases are small stand-ins for the cluster's bases, under the names
// Dockerfiles use: node:20 (users root and node, docker-entrypoint.sh and
// CMD node) and the distroless base (users root and nonroot, node as the
// ENTRYPOINT).
func testBases(t *testing.T) map[string]v1.Image {
	t.Helper()
	mk := func(cfg v1.Config, entries ...Entry) v1.Image {
		l, err := Layer(entries)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, l)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Config = "linux", "amd64", cfg
		cf.History = []v1.History{{CreatedBy: "base"}}
		img, err = mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	return map[string]v1.Image{
		"node:20": mk(v1.Config{
			Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"node"},
			Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=20.20.2"},
		},
			File("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n")),
			File("/etc/group", 0o644, []byte("root:x:0:\nnode:x:1000:\n")),
			Dir("/home/node", 0o755, 1000, 1000),
			File("/usr/local/bin/docker-entrypoint.sh", 0o755, []byte("#!/bin/sh\nexec \"$@\"\n"))),
		"gcr.io/distroless/nodejs20-debian12": mk(v1.Config{Entrypoint: []string{"/nodejs/bin/node"}, Env: []string{"PATH=/usr/bin:/bin"}},
			File("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")),
			File("/etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")),
			File("/nodejs/bin/node", 0o755, []byte("not really node"))),
	}
}

// fakeNpm is an npm that logs each call to $FAKE_NPM_LOG and makes what
// npm ci makes: node_modules with a package, its .bin symlink and
// .package-lock.json; `npm run build` "compiles" src/app.ts to
// dist/app.js. It needs no network.
const fakeNpm = `#!/bin/sh
echo "$@" >> "$FAKE_NPM_LOG"
if [ "$1 $2" = "run build" ]; then
	mkdir -p dist && sed 's/: string//' src/app.ts > dist/app.js && exit 0
fi
[ "$1" = ci ] || exit 2
[ -f package-lock.json ] || { echo "npm ci needs a package-lock.json" >&2; exit 1; }
mkdir -p node_modules/dep/bin node_modules/.bin
echo "module.exports = 'dep';" > node_modules/dep/index.js
printf '#!/usr/bin/env node\n' > node_modules/dep/bin/cli.js
chmod 755 node_modules/dep/bin/cli.js
ln -s ../dep/bin/cli.js node_modules/.bin/dep
echo '{"lockfileVersion":3}' > node_modules/.package-lock.json
`

// newBuilder is a Builder with testBases, the fake npm and a cache of its
// own; npmCalls reads how often npm ran.
func newBuilder(t *testing.T) (b *Builder, npmCalls func() int) {
	t.Helper()
	dir := t.TempDir()
	npm := filepath.Join(dir, "npm")
	if err := os.WriteFile(npm, []byte(fakeNpm), 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "npm.log")
	t.Setenv("FAKE_NPM_LOG", logFile)
	return &Builder{Bases: testBases(t), Npm: npm, CacheDir: filepath.Join(dir, "cache")}, func() int {
		b, _ := os.ReadFile(logFile)
		return strings.Count(string(b), "\n")
	}
}

// added returns the entries of the image's layers after the base's
// (skip of them), one map per layer, by path.
func added(t *testing.T, img v1.Image, skip int) []map[string]Entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]Entry
	for _, l := range layers[skip:] {
		es, err := LayerEntries(l)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]Entry{}
		for _, e := range es {
			m[e.Path] = e
		}
		out = append(out, m)
	}
	return out
}

func paths(m map[string]Entry) []string {
	var out []string
	for p, e := range m {
		if !e.IsDir() {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func TestBuild(t *testing.T) {
	tests := []struct {
		dir string
		// baseLayers is how many layers the base has.
		baseLayers int
		// files are the non-directory paths of each added layer.
		files  [][]string
		config v1.Config
		check  func(t *testing.T, layers []map[string]Entry)
	}{{
		dir: "basic", baseLayers: 1,
		files: [][]string{
			{"/app/package-lock.json", "/app/package.json"},
			{"/app/node_modules/.bin/dep", "/app/node_modules/.package-lock.json", "/app/node_modules/dep/bin/cli.js", "/app/node_modules/dep/index.js"},
			// .dockerignore: node_modules, *.md (the root's only) and the
			// Dockerfile are not copied; .dockerignore itself is.
			{"/app/.dockerignore", "/app/docs/notes.md", "/app/package-lock.json", "/app/package.json", "/app/src/server.js"},
		},
		config: v1.Config{
			Entrypoint:   []string{"docker-entrypoint.sh"},
			Cmd:          []string{"node", "src/server.js"},
			Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=20.20.2", "NODE_ENV=production"},
			User:         "node",
			WorkingDir:   "/app",
			ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/udp": {}},
		},
		check: func(t *testing.T, layers []map[string]Entry) {
			bin := layers[1]["/app/node_modules/.bin/dep"]
			if !bin.IsSymlink() || bin.Link != "../dep/bin/cli.js" {
				t.Errorf(".bin/dep: %+v, want a symlink to ../dep/bin/cli.js", bin)
			}
			if cli := layers[1]["/app/node_modules/dep/bin/cli.js"]; cli.Mode != 0o755 {
				t.Errorf("cli.js mode %v, want 0755", cli.Mode)
			}
			// RUN ran as root (USER node comes later); the new /app is root's.
			if e := layers[1]["/app/node_modules/dep/index.js"]; e.UID != 0 {
				t.Errorf("npm ci's files owned by %d, want 0", e.UID)
			}
			if d := layers[0]["/app"]; !d.IsDir() || d.UID != 0 || d.Mode.Perm() != 0o755 {
				t.Errorf("/app: %+v, want root's 0755 directory", d)
			}
		},
	}, {
		dir: "multistage", baseLayers: 1,
		files: [][]string{
			{"/app/index.js", "/app/node_modules/.bin/dep", "/app/node_modules/.package-lock.json", "/app/node_modules/dep/bin/cli.js", "/app/node_modules/dep/index.js", "/app/package-lock.json", "/app/package.json"},
			{"/srv/index.js"},
		},
		// The distroless base's ENTRYPOINT and Env; no CMD or NODE_VERSION
		// from the build stage.
		config: v1.Config{Entrypoint: []string{"/nodejs/bin/node"}, Cmd: []string{"index.js"}, Env: []string{"PATH=/usr/bin:/bin"}, User: "65532", WorkingDir: "/app"},
		check: func(t *testing.T, layers []map[string]Entry) {
			if e := layers[1]["/srv/index.js"]; e.UID != 65532 || e.GID != 65532 {
				t.Errorf("--chown=nonroot:nonroot: %d:%d, want 65532:65532", e.UID, e.GID)
			}
			if e := layers[0]["/app/node_modules/.bin/dep"]; !e.IsSymlink() {
				t.Errorf("COPY --from kept no symlink: %+v", e)
			}
		},
	}, {
		dir: "scratch", baseLayers: 0,
		files:  [][]string{{"/tool"}},
		config: v1.Config{Entrypoint: []string{"/tool"}},
		check: func(t *testing.T, layers []map[string]Entry) {
			if e := layers[0]["/tool"]; e.Mode != 0o755 {
				t.Errorf("/tool mode %v, want 0755", e.Mode)
			}
		},
	}, {
		dir: "envexpand", baseLayers: 1,
		files: [][]string{{"/srv/app/a.txt"}, {"/srv/app/b.txt"}},
		// A shell-form CMD after ENTRYPOINT: /bin/sh -c, and kept.
		config: v1.Config{
			Entrypoint: []string{"/usr/local/bin/node"},
			Cmd:        []string{"/bin/sh", "-c", `node server.js --greeting "$GREETING"`},
			Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=20.20.2", "APP=/srv/app", "GREETING=hello world"},
			WorkingDir: "/srv/app",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			b, _ := newBuilder(t)
			img, err := b.Build(filepath.Join("testdata", tt.dir))
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cf.Config, tt.config) {
				t.Errorf("config:\n got %+v\nwant %+v", cf.Config, tt.config)
			}
			if cf.OS != "linux" || cf.Architecture == "" || !cf.Created.Time.Equal(Epoch) {
				t.Errorf("os %q, architecture %q, created %v", cf.OS, cf.Architecture, cf.Created)
			}
			layers := added(t, img, tt.baseLayers)
			if len(layers) != len(tt.files) {
				t.Fatalf("%d layers after the base's, want %d (one per COPY and RUN)", len(layers), len(tt.files))
			}
			nonEmpty := 0
			for _, h := range cf.History {
				if !h.EmptyLayer {
					nonEmpty++
				}
			}
			if nonEmpty != tt.baseLayers+len(tt.files) {
				t.Errorf("history has %d layer entries, want %d", nonEmpty, tt.baseLayers+len(tt.files))
			}
			for i, want := range tt.files {
				if got := paths(layers[i]); !reflect.DeepEqual(got, want) {
					t.Errorf("layer %d after the base's:\n got %q\nwant %q", i, got, want)
				}
			}
			if tt.check != nil {
				tt.check(t, layers)
			}
		})
	}
}

// TestBuildInheritance checks Docker's config inheritance: an ENTRYPOINT
// resets the base's CMD unless this stage sets CMD (before or after it).
func TestBuildInheritance(t *testing.T) {
	tests := []struct {
		name, dockerfile string
		entrypoint, cmd  []string
	}{
		{"inherited", "FROM node:20\n", []string{"docker-entrypoint.sh"}, []string{"node"}},
		{"cmd only", "FROM node:20\nCMD [\"node\", \"a.js\"]\n", []string{"docker-entrypoint.sh"}, []string{"node", "a.js"}},
		{"entrypoint resets cmd", "FROM node:20\nENTRYPOINT [\"/run\"]\n", []string{"/run"}, nil},
		{"cmd before entrypoint is kept", "FROM node:20\nCMD [\"x\"]\nENTRYPOINT [\"/run\"]\n", []string{"/run"}, []string{"x"}},
		{"cmd after entrypoint", "FROM node:20\nENTRYPOINT [\"/run\"]\nCMD [\"y\"]\n", []string{"/run"}, []string{"y"}},
		{"shell forms", "FROM node:20\nENTRYPOINT exec node\nCMD a.js\n", []string{"/bin/sh", "-c", "exec node"}, []string{"/bin/sh", "-c", "a.js"}},
		{"stage from stage", "FROM node:20 AS one\nENTRYPOINT [\"/one\"]\nFROM one\nCMD [\"two\"]\n", []string{"/one"}, []string{"two"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(tt.dockerfile), 0o644); err != nil {
				t.Fatal(err)
			}
			b, _ := newBuilder(t)
			img, err := b.Build(dir)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cf.Config.Entrypoint, tt.entrypoint) || !reflect.DeepEqual(cf.Config.Cmd, tt.cmd) {
				t.Errorf("ENTRYPOINT %q CMD %q, want %q %q", cf.Config.Entrypoint, cf.Config.Cmd, tt.entrypoint, tt.cmd)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name, dockerfile string
		files            map[string]string
		// want is the end of "<dir>/Dockerfile:<want>"
		want string
	}{
		{"unsupported instruction", "FROM node:20\nADD . /app\n", nil, ":2: ADD: instruction not supported"},
		{"ARG", "ARG V=1\nFROM node:20\n", nil, ":1: ARG: instruction not supported"},
		{"continuation lines count", "FROM node:20\nENV A=1 \\\n    B=2\n\n# a comment\nHEALTHCHECK NONE\n", nil, ":6: HEALTHCHECK: instruction not supported"},
		{"first is not FROM", "WORKDIR /app\n", nil, ":1: WORKDIR: the first instruction must be FROM"},
		{"unknown base", "FROM ubuntu:24.04\n", nil, `:1: FROM: unknown base image "ubuntu:24.04"`},
		{"FROM flag", "FROM --platform=linux/arm64 node:20\n", nil, ":1: FROM: flag --platform=linux/arm64 is not supported"},
		{"RUN other than npm ci", "FROM node:20\nRUN apt-get install -y curl\n", nil, ":2: RUN: only `RUN npm ci [flags]` and `RUN npm run <script>` are supported, got"},
		{"RUN npm ci with a shell", "FROM node:20\nRUN npm ci && rm -rf /tmp\n", nil, ":2: RUN: only `RUN npm ci [flags]` and `RUN npm run <script>` are supported: \"&&\" is not a flag"},
		{"RUN npm run with two scripts", "FROM node:20\nRUN npm run build test\n", nil, ":2: RUN: only `RUN npm ci [flags]` and `RUN npm run <script>` are supported: \"build test\" is not one script name"},
		{"RUN flag", "FROM node:20\nRUN --mount=type=cache,target=/root/.npm npm ci\n", nil, ":2: RUN: flag --mount=type=cache,target=/root/.npm is not supported"},
		{"COPY flag", "FROM node:20\nCOPY --chmod=755 a /a\n", map[string]string{"a": "a"}, ":2: COPY: flag --chmod=755 is not supported"},
		{"COPY missing", "FROM node:20\nCOPY missing.txt /x\n", nil, ":2: COPY: missing.txt: not found"},
		{"COPY ignored", "FROM node:20\nCOPY secret.env /x\n", map[string]string{"secret.env": "x", ".dockerignore": "*.env\n"}, ":2: COPY: secret.env: not found"},
		{"COPY several to a file", "FROM node:20\nCOPY a b /dst\n", map[string]string{"a": "a", "b": "b"}, ":2: COPY: with more than one source file, the destination must be a directory"},
		{"COPY outside", "FROM node:20\nCOPY ../x /x\n", nil, ":2: COPY: ../x is outside the build context"},
		{"COPY --from unknown", "FROM node:20\nCOPY --from=build /app /app\n", nil, ":2: COPY: --from=build: no earlier stage"},
		{"COPY --chown unknown user", "FROM node:20\nCOPY --chown=nobody a /a\n", map[string]string{"a": "a"}, `:2: COPY: --chown=nobody: no user "nobody"`},
		{"EXPOSE", "FROM node:20\nEXPOSE http\n", nil, `:2: EXPOSE: "http" is not <port>`},
		{"CMD bad JSON", "FROM node:20\nCMD [\"node\", 1]\n", nil, ":2: CMD: "},
		{"npm ci fails", "FROM node:20\nWORKDIR /app\nCOPY package.json ./\nRUN npm ci\n", map[string]string{"package.json": "{}"}, ":4: RUN: npm ci: exit status 1"},
		{"unsupported expansion", "FROM node:20\nWORKDIR ${DIR:-/app}\n", nil, ":2: WORKDIR: ${DIR:-/app} is not supported"},
		{"stage name twice", "FROM node:20 AS a\nFROM node:20 AS a\n", nil, `:2: FROM: stage name "a" is used twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"Dockerfile": tt.dockerfile}
			for k, v := range tt.files {
				files[k] = v
			}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, _ := newBuilder(t)
			_, err := b.Build(dir)
			want := filepath.Join(dir, "Dockerfile") + tt.want
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %v, want one starting with %q", err, want)
			}
		})
	}
}

// TestBuildCache checks that a second build of the same directory runs no
// npm and makes the same image, and that a changed lockfile runs npm again.
func TestBuildCache(t *testing.T) {
	b, npmCalls := newBuilder(t)
	dir := t.TempDir()
	for name, content := range map[string]string{
		"Dockerfile":        "FROM node:20\nWORKDIR /app\nCOPY package*.json ./\nRUN npm ci --omit=dev\n",
		"package.json":      `{"name":"x"}`,
		"package-lock.json": `{"lockfileVersion":3}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	digest := func() v1.Hash {
		t.Helper()
		img, err := b.Build(dir)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := digest()
	if n := npmCalls(); n != 1 || b.NpmRuns != 1 {
		t.Fatalf("first build: npm ran %d times (NpmRuns %d), want 1", n, b.NpmRuns)
	}
	if second := digest(); second != first {
		t.Errorf("second build: digest %s, want %s", second, first)
	}
	if n := npmCalls(); n != 1 || b.NpmRuns != 1 {
		t.Errorf("second build: npm ran %d times in all, want 1 (the cache)", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "package-lock.json"), []byte(`{"lockfileVersion":3,"x":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if third := digest(); third == first {
		t.Errorf("a changed lockfile made the same image")
	}
	if n := npmCalls(); n != 2 {
		t.Errorf("a changed lockfile: npm ran %d times in all, want 2", n)
	}
}

func TestDockerignore(t *testing.T) {
	ignore := "node_modules\n*.md\n**/*.log\n!keep.log\ndocs/\n# comment\n/Dockerfile\ntmp?\n"
	tests := []struct {
		path     string
		excluded bool
	}{
		{"node_modules", true},
		{"node_modules/express/index.js", true},
		{"src/node_modules/x.js", false}, // patterns are anchored at the root
		{"README.md", true},
		{"docs/README.md", true}, // docs/ excludes all under it
		{"src/README.md", false},
		{"a.log", true},
		{"src/deep/b.log", true},
		{"keep.log", false}, // ! re-includes; the last match wins
		{"Dockerfile", true},
		{"src/Dockerfile", false},
		{"tmp1", true},
		{"tmp12", false},
		{"src/server.js", false},
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(ignore), 0o644); err != nil {
		t.Fatal(err)
	}
	ig, err := readDockerignore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if got := ig.excluded(tt.path); got != tt.excluded {
			t.Errorf("excluded(%q) = %v, want %v", tt.path, got, tt.excluded)
		}
	}
}

// TestLayerReproducible checks that a layer depends on its entries only:
// not on their order, and every time is Epoch.
func TestLayerReproducible(t *testing.T) {
	a := []Entry{File("/app/b.js", 0o644, []byte("b")), File("/app/a.js", 0o644, []byte("a")), Symlink("/app/c", "a.js")}
	b := []Entry{a[2], a[0], a[1]}
	la, err := Layer(a)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := Layer(b)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := la.Digest()
	db, _ := lb.Digest()
	if da != db {
		t.Errorf("digests %s and %s for the same entries", da, db)
	}
	es, err := LayerEntries(la)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Path)
	}
	if want := []string{"/app", "/app/a.js", "/app/b.js", "/app/c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("entries %q, want %q (the parent added, path order)", got, want)
	}
	if es[0].Mode != fs.ModeDir|0o755 {
		t.Errorf("/app mode %v, want a 0755 directory", es[0].Mode)
	}
}

// TestCachedLayer checks that a cached layer is compressed once, and reads
// back as its tar.
func TestCachedLayer(t *testing.T) {
	dir := t.TempDir()
	entries := []Entry{File("/usr/local/bin/node", 0o755, []byte(strings.Repeat("node", 1000)))}
	first, err := CachedLayer(entries, dir)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.gz"))
	if len(files) != 1 {
		t.Fatalf("cache holds %q, want one .gz", files)
	}
	info, _ := os.Stat(files[0])
	second, err := CachedLayer(entries, dir)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := os.Stat(files[0])
	d1, _ := first.Digest()
	d2, _ := second.Digest()
	if d1 != d2 || !info.ModTime().Equal(again.ModTime()) {
		t.Errorf("digests %s, %s; the file was rewritten: %v", d1, d2, !info.ModTime().Equal(again.ModTime()))
	}
	plain, err := Layer(entries)
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := first.DiffID()
	id2, _ := plain.DiffID()
	if id1 != id2 {
		t.Errorf("diff ID %s, Layer's %s", id1, id2)
	}
	rc, err := first.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	es, err := readTar(zr)
	if err != nil || len(es) != 4 || string(es[3].Data) != strings.Repeat("node", 1000) {
		t.Errorf("the compressed file reads back as %d entries (%v)", len(es), err)
	}
}

// TestPushPull pushes a built image to go-containerregistry's registry on
// loopback and reads it back.
func TestPushPull(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	b, _ := newBuilder(t)
	img, err := b.Build(filepath.Join("testdata", "basic"))
	if err != nil {
		t.Fatal(err)
	}
	ref, pushed, err := PushContent(img, host+"/basic")
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := ContentTag(img)
	if ref != host+"/basic:"+tag || !pushed || !strings.HasPrefix(tag, "sha-") {
		t.Fatalf("PushContent: %s pushed %v, want %s/basic:%s pushed", ref, pushed, host, tag)
	}
	if _, pushed, err := PushContent(img, host+"/basic"); err != nil || pushed {
		t.Errorf("PushContent of the same image again: pushed %v (%v), want not pushed", pushed, err)
	}

	got, err := Pull(ref)
	if err != nil {
		t.Fatal(err)
	}
	wantDigest, _ := img.Digest()
	gotDigest, err := got.Digest()
	if err != nil || gotDigest != wantDigest {
		t.Fatalf("pulled digest %s (%v), want %s", gotDigest, err, wantDigest)
	}
	wantCF, _ := img.ConfigFile()
	gotCF, err := got.ConfigFile()
	if err != nil || !reflect.DeepEqual(gotCF.Config, wantCF.Config) {
		t.Errorf("pulled config %+v (%v), want %+v", gotCF.Config, err, wantCF.Config)
	}
	wantLayers, _ := img.Layers()
	gotLayers, err := got.Layers()
	if err != nil || len(gotLayers) != len(wantLayers) {
		t.Fatalf("pulled %d layers (%v), want %d", len(gotLayers), err, len(wantLayers))
	}
	last := added(t, got, len(gotLayers)-1)[0]
	if e := last["/app/src/server.js"]; string(e.Data) != "console.log('server');\n" {
		t.Errorf("pulled /app/src/server.js = %q", e.Data)
	}

	// Push by name, then a build on the pulled base (a remote image).
	if err := Push(got, host+"/again:v1"); err != nil {
		t.Fatal(err)
	}
	base, err := Pull(host + "/again:v1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM app\nCOPY Dockerfile /app/copied\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Bases = map[string]v1.Image{"app": base}
	on, err := b.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Push(on, host+"/on:v1"); err != nil {
		t.Fatal(err)
	}
	onLayers, _ := on.Layers()
	if len(onLayers) != len(gotLayers)+1 {
		t.Errorf("image on the pulled base: %d layers, want %d", len(onLayers), len(gotLayers)+1)
	}
}

// TestRunScript builds with RUN npm run build: the layer is what the
// script made, cached by every file of the working directory, so that an
// edit of a source builds again and an unchanged tree does not.
func TestRunScript(t *testing.T) {
	b, npmCalls := newBuilder(t)
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", "FROM node:20 AS build\nWORKDIR /app\nCOPY . .\nRUN npm run build\nFROM node:20\nWORKDIR /app\nCOPY --from=build /app/dist ./dist\n")
	write("package.json", `{"scripts":{"build":"tsc"}}`)
	write("src/app.ts", "const port: string = '8080';\n")
	build := func() map[string]Entry {
		t.Helper()
		img, err := b.Build(dir)
		if err != nil {
			t.Fatal(err)
		}
		layers := added(t, img, 1)
		return layers[len(layers)-1]
	}
	if got := string(build()["/app/dist/app.js"].Data); got != "const port = '8080';\n" {
		t.Errorf("dist/app.js = %q, want the script's output", got)
	}
	build()
	if n := npmCalls(); n != 1 {
		t.Errorf("an unchanged tree: npm ran %d times in all, want 1 (the cache)", n)
	}
	write("src/app.ts", "const port: string = '9090';\n")
	if got := string(build()["/app/dist/app.js"].Data); got != "const port = '9090';\n" {
		t.Errorf("after an edit dist/app.js = %q, want it built again", got)
	}
	if n := npmCalls(); n != 2 {
		t.Errorf("an edited source: npm ran %d times in all, want 2", n)
	}
}
