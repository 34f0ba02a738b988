package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
	"github.com/aether-dev/aether-devhot/test/framework/npmregistry"
)

// The app of the dependency tests: an image whose package.json and
// lockfile have no dependencies, and releases that add greeting-dep.
const (
	basePackageJSON = `{"name":"shop","version":"1.0.0"}` + "\n"
	baseLock        = `{"name":"shop","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"shop","version":"1.0.0"}}}` + "\n"
	depsApp         = `let from = '', greeting = 'none';
try { greeting = require('greeting-dep')('deps'); from = require.resolve('greeting-dep'); } catch (err) { greeting = err.code; }
console.log(JSON.stringify({who: process.env.VERSION_NOTE || '', greeting, from}));`
)

func greetingDep(t *testing.T) npmregistry.Package {
	t.Helper()
	p, err := npmregistry.Pack("greeting-dep", "1.0.0", map[string]string{
		"package.json": `{"name":"greeting-dep","version":"1.0.0","main":"index.js"}`,
		"index.js":     `module.exports = (who) => 'hello ' + who + ' from an installed package';`,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// withDeps is the release's package.json and lockfile with packages added.
func withDeps(t *testing.T, packages ...npmregistry.Package) (pj, lock []byte) {
	t.Helper()
	pj, lock, err := npmregistry.AddDependencies([]byte(basePackageJSON), []byte(baseLock), packages...)
	if err != nil {
		t.Fatal(err)
	}
	return pj, lock
}

// depsImage is an image's app directory with the base lockfile and a
// node_modules that holds no greeting-dep.
func depsImage(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	for name, content := range map[string]string{"package.json": basePackageJSON, "package-lock.json": baseLock, "node_modules/.package-lock.json": baseLock} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type bootRun struct {
	out      resolved
	stderr   string
	code     int
	loaded   release.Loaded
	duration time.Duration
}

// bootOnce runs boot.cjs once as the app container would, and reads the
// record it left.
func bootOnce(t *testing.T, ws *release.Workspace, image string, env ...string) bootRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(ws.Dir(), sidecar.BootFile))
	cmd.Dir = image
	// HOME is the test's, so that no ~/.npmrc of the machine's user applies.
	cmd.Env = append(os.Environ(), append([]string{sidecar.EnvEntry + "=server.js", sidecar.EnvAppDir + "=" + image, "HOME=" + t.TempDir()}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	began := time.Now()
	out, err := cmd.Output()
	r := bootRun{stderr: stderr.String(), duration: time.Since(began)}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if r.code == 0 {
		if err := json.Unmarshal(out, &r.out); err != nil {
			t.Fatalf("app printed %q: %v\n%s", out, err, r.stderr)
		}
	}
	if r.loaded, err = ws.Loaded(); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBootInstallsDependencies: a release whose lockfile is not the
// image's gets its dependencies from the image's npm, through the
// registry NPM_CONFIG_REGISTRY names, before its code starts; the next
// release with the same lockfile installs nothing; a release with the
// image's lockfile uses the image's node_modules; and the cache keeps
// only what releases on disk use.
func TestBootInstallsDependencies(t *testing.T) {
	requireNode(t)
	requireNpm(t)
	reg := startRegistry(t, greetingDep(t))
	image := depsImage(t)
	ws, err := release.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pj, lock := withDeps(t, greetingDep(t))
	key, _ := release.DepsKey(strings.NewReader(string(lock)))
	entry := filepath.Join(ws.Dir(), sidecar.DepsDir, key)
	registry := "NPM_CONFIG_REGISTRY=" + reg.URL

	publishFiles(t, ws, map[string][]byte{"package.json": pj, "package-lock.json": lock, "server.js": []byte(depsApp)})
	first := bootOnce(t, ws, image, registry)
	if first.code != 0 || first.out.Greeting != "hello deps from an installed package" {
		t.Fatalf("first release: exit %d, %+v\n%s", first.code, first.out, first.stderr)
	}
	if want := filepath.Join(entry, "node_modules", "greeting-dep", "index.js"); first.out.From != want {
		t.Errorf("greeting-dep resolved to %s, want the cache's %s", first.out.From, want)
	}
	if d := first.loaded.Deps; d == nil || d.State != release.DepsInstalled || d.Manager != "npm" || d.Key != key || d.Lockfile != "package-lock.json" || d.Ms <= 0 {
		t.Errorf("record's deps %+v; want installed by npm, key %s", d, key)
	}
	if got := reg.Tarballs(); len(got) != 1 {
		t.Errorf("tarballs fetched %v, want greeting-dep's once", got)
	}
	if !strings.Contains(first.stderr, "installing the dependencies of package-lock.json with npm ci") {
		t.Errorf("the app's log does not say it installs:\n%s", first.stderr)
	}
	t.Logf("installed in %d ms (boot to exit %s)", first.loaded.Deps.Ms, first.duration.Round(time.Millisecond))

	publishFiles(t, ws, map[string][]byte{"package.json": pj, "package-lock.json": lock, "server.js": []byte("process.env.VERSION_NOTE = 'v2';\n" + depsApp)})
	second := bootOnce(t, ws, image, registry)
	if second.code != 0 || second.out.Greeting != "hello deps from an installed package" || second.out.Who != "v2" {
		t.Fatalf("second release: exit %d, %+v\n%s", second.code, second.out, second.stderr)
	}
	if d := second.loaded.Deps; d == nil || d.State != release.DepsCached {
		t.Errorf("second release's deps %+v, want cached", d)
	}
	if got := reg.Tarballs(); len(got) != 1 {
		t.Errorf("the same lockfile was installed again: tarballs %v", got)
	}

	publishFiles(t, ws, map[string][]byte{"package.json": []byte(basePackageJSON), "package-lock.json": []byte(baseLock), "server.js": []byte(depsApp)})
	third := bootOnce(t, ws, image, registry)
	if third.code != 0 || third.out.Greeting != "MODULE_NOT_FOUND" {
		t.Errorf("with the image's lockfile the release found greeting-dep, which the image lacks: %+v\n%s", third.out, third.stderr)
	}
	imageKey, _ := release.DepsKey(strings.NewReader(baseLock))
	if d := third.loaded.Deps; d == nil || d.State != release.DepsImage || d.Key != imageKey {
		t.Errorf("image lockfile's deps %+v, want image", d)
	}
	if target, err := os.Readlink(filepath.Join(ws.Dir(), sidecar.DepsDir, imageKey, "node_modules")); err != nil || target != filepath.Join(image, "node_modules") {
		t.Errorf("the image lockfile's entry leads to %q, %v; want the image's node_modules", target, err)
	}
	if got := reg.Tarballs(); len(got) != 1 {
		t.Errorf("the image's lockfile installed something: tarballs %v", got)
	}

	// Two releases without a lockfile push the first two out of the
	// fetcher's three; the next start prunes the entry only they used.
	publishFiles(t, ws, map[string][]byte{"server.js": []byte(depsApp)})
	publishFiles(t, ws, map[string][]byte{"server.js": []byte("// 5\n" + depsApp)})
	if _, err := os.Stat(entry); err != nil {
		t.Fatalf("the entry is gone before a start pruned it: %v", err)
	}
	bootOnce(t, ws, image, registry)
	if _, err := os.Lstat(entry); !os.IsNotExist(err) {
		t.Errorf("the entry no release on disk uses is still there: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(ws.Dir(), sidecar.DepsDir, imageKey)); err != nil {
		t.Errorf("the entry a kept release uses was pruned: %v", err)
	}
	left, _ := os.ReadDir(filepath.Join(ws.Dir(), sidecar.DepsDir))
	if len(left) != 1 {
		t.Errorf("deps cache holds %d entries, want the image lockfile's only", len(left))
	}
}

// TestBootDependencyFailures: each way of failing to get a release's
// dependencies ends the process before the entry loads, with a reason
// for the fetcher and the package manager's last lines.
func TestBootDependencyFailures(t *testing.T) {
	requireNode(t)
	requireNpm(t)
	reg := startRegistry(t, greetingDep(t))
	missing, err := npmregistry.Pack("aether-no-such-package", "1.0.0", map[string]string{"package.json": `{"name":"aether-no-such-package","version":"1.0.0"}`})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/"
	ln.Close()

	pj, lock := withDeps(t, greetingDep(t))
	missingPJ, missingLock := withDeps(t, greetingDep(t), missing)
	cases := []struct {
		name   string
		files  map[string][]byte
		env    []string
		reason refresh.Reason
		want   []string // in the record's output or message
	}{
		{"a package the registry does not have", map[string][]byte{"package.json": missingPJ, "package-lock.json": missingLock},
			[]string{"NPM_CONFIG_REGISTRY=" + reg.URL}, refresh.ReasonDepsInstall, []string{"npm ci failed (exit code 1)", "404", "aether-no-such-package"}},
		{"the registry is unreachable", map[string][]byte{"package.json": pj, "package-lock.json": lock},
			[]string{"NPM_CONFIG_REGISTRY=" + down, "NPM_CONFIG_FETCH_RETRIES=0"}, refresh.ReasonDepsInstall, []string{"npm ci failed", "ECONNREFUSED"}},
		{"package.json names a package its lockfile lacks", map[string][]byte{"package.json": missingPJ, "package-lock.json": lock},
			[]string{"NPM_CONFIG_REGISTRY=" + reg.URL}, refresh.ReasonDepsInstall, []string{"npm ci failed", "aether-no-such-package"}},
	}
	if _, err := exec.LookPath("yarn"); err != nil {
		cases = append(cases, struct {
			name   string
			files  map[string][]byte
			env    []string
			reason refresh.Reason
			want   []string
		}{"yarn.lock, and no yarn in the image", map[string][]byte{"package.json": pj, "yarn.lock": []byte("# yarn lockfile v1\n")},
			nil, refresh.ReasonNoPackageManager, []string{"yarn.lock needs yarn, and the app's image has none (not on PATH"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws, err := release.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			c.files["server.js"] = []byte(depsApp)
			publishFiles(t, ws, c.files)
			r := bootOnce(t, ws, depsImage(t), c.env...)
			d := r.loaded.Deps
			if r.code != 1 || d == nil || d.State != release.DepsFailed || d.Reason != c.reason || r.loaded.Exit == nil || r.loaded.Exit.Error == nil {
				t.Fatalf("exit %d, record %+v deps %+v; want exit 1, failed with %s\n%s", r.code, r.loaded, d, c.reason, r.stderr)
			}
			msg := r.loaded.Exit.Error.Message
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the error lacks %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "A complete log of this run") {
				t.Errorf("the error points to npm's log, which is gone:\n%s", msg)
			}
			if r.loaded.Ready {
				t.Error("the entry loaded")
			}
			entries, _ := os.ReadDir(filepath.Join(ws.Dir(), sidecar.DepsDir))
			for _, e := range entries {
				t.Errorf("a failed install left %s in the cache", e.Name())
			}
			t.Logf("%s: %s", c.reason, msg)
		})
	}
}

// startRegistry serves packages on loopback until the test ends.
func startRegistry(t *testing.T, packages ...npmregistry.Package) *npmregistry.Registry {
	t.Helper()
	reg, err := npmregistry.Start("127.0.0.1:0", packages...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

func requireNpm(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		if os.Getenv("AETHER_REQUIRE_NODE") != "" {
			tb.Fatal("npm is not on PATH and AETHER_REQUIRE_NODE is set: install Node.js 20 with npm")
		}
		tb.Skip("npm is not on PATH")
	}
}

// depsArtifact builds and serves version v of the harness's app with a
// package.json and lockfile.
func (h *harness) depsArtifact(v int, pj, lock []byte) annotations.Target {
	h.tb.Helper()
	return h.serve(fmt.Sprintf("/deps-%d.tgz", v), map[string][]byte{"version.json": fmt.Appendf(nil, `{"version":%d}`, v), "package.json": pj, "package-lock.json": lock})
}

// TestPreinstallWhileServing: under node --watch, a push with a new
// lockfile is installed by the running process before the release is
// published, so the app answers from its old release, in the same
// process, throughout the install; then the new release starts on the
// installed dependencies. An install that fails publishes nothing: the old
// process still answers, never restarted.
func TestPreinstallWhileServing(t *testing.T) {
	requireNode(t)
	requireNpm(t)
	reg := startRegistry(t, greetingDep(t))
	t.Setenv("NPM_CONFIG_REGISTRY", reg.URL)
	t.Setenv("HOME", t.TempDir())
	h := newHarness(t)
	before, err := h.get()
	if err != nil {
		t.Fatal(err)
	}
	pj, lock := withDeps(t, greetingDep(t))
	var installing []release.Deps
	// What the app answers while npm runs: the old release, from the
	// same process.
	var during answer
	var duringErr error
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := h.ws.Apply(ctx, h.fetch, h.depsArtifact(2, pj, lock), release.Limits{}, release.WithInstalling(func(d release.Deps) {
		installing = append(installing, d)
		during, duringErr = h.get()
	}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Deps == nil || res.Deps.State != release.DepsInstalled || res.Deps.Ms <= 0 || res.Deps.Manager != "npm" {
		t.Fatalf("Apply's deps %+v, want installed by npm before the publish", res.Deps)
	}
	if len(installing) != 1 || installing[0].Lockfile != "package-lock.json" {
		t.Errorf("installing called %+v, want once for package-lock.json", installing)
	}
	after, err := h.waitVersion(2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if duringErr != nil || during.Version != 1 || during.PID != before.PID {
		t.Errorf("during the install the app answered %+v, %v; want version 1 from pid %d", during, duringErr, before.PID)
	}
	l, err := h.ws.Loaded()
	if err != nil || l.Deps == nil || l.Deps.State != release.DepsCached || !l.Installer {
		t.Errorf("the new process's record %+v %v: want the dependencies there already, and it takes requests", l, err)
	}
	t.Logf("installed in %d ms while pid %d served version 1; version 2 in pid %d", res.Deps.Ms, before.PID, after.PID)

	missing, err := npmregistry.Pack("aether-no-such-package", "1.0.0", map[string]string{"package.json": `{"name":"aether-no-such-package","version":"1.0.0"}`})
	if err != nil {
		t.Fatal(err)
	}
	badPJ, badLock := withDeps(t, greetingDep(t), missing)
	_, err = h.ws.Apply(ctx, h.fetch, h.depsArtifact(3, badPJ, badLock), release.Limits{})
	if release.ReasonOf(err) != refresh.ReasonDepsInstall || !release.IsFinal(err) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Apply of a lockfile the registry cannot serve: %v; want a final deps_install_failed with npm's 404", err)
	}
	now, err := h.get()
	if err != nil || now.Version != 2 || now.PID != after.PID {
		t.Errorf("after the failed install the app answers %+v, %v; want version 2 from pid %d, not restarted", now, err, after.PID)
	}
}
