package node_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// imageApp writes what an app's image holds in its app directory: a
// package.json, the app's own code, and node_modules with a CommonJS
// package, an ESM-only package with an exports map, and a dependency of
// that package that the app does not require itself.
func imageApp(t *testing.T, entryCode string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	files := map[string]string{
		"package.json":                       `{"name":"shop","version":"1.0.0"}`,
		"server.js":                          entryCode,
		"node_modules/greeting/package.json": `{"name":"greeting","version":"1.0.0","main":"lib/index.js"}`,
		"node_modules/greeting/lib/index.js": `module.exports = (who) => 'hello ' + who + ' from the image';`,
		"node_modules/esm-only/package.json": `{"name":"esm-only","version":"2.0.0","type":"module",` +
			`"exports":{".":{"import":"./dist/index.js"},"./package.json":"./package.json"}}`,
		"node_modules/esm-only/dist/index.js": `import inner from 'inner'; export const version = 'esm-only 2 with ' + inner;`,
		"node_modules/inner/package.json":     `{"name":"inner","version":"3.0.0","main":"index.js"}`,
		"node_modules/inner/index.js":         `module.exports = 'inner 3';`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// cjsApp and esmApp print what they resolved, as JSON.
const (
	cjsApp = `const greet = require('greeting');
console.log(JSON.stringify({who: 'cjs', greeting: greet('cjs'), from: require.resolve('greeting'), cwd: process.cwd()}));`
	esmApp = `import { version } from 'esm-only';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
console.log(JSON.stringify({who: 'esm', greeting: require('greeting')('esm'), esm: version, cwd: process.cwd()}));`
)

type resolved struct {
	Who, Greeting, From, Esm, Cwd string
}

// runBoot runs boot.cjs once in cwd with env, as the app container starts
// it (without --watch: one load is what is checked).
func runBoot(t *testing.T, ws *release.Workspace, cwd string, env ...string) (resolved, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(ws.Dir(), sidecar.BootFile))
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("boot.cjs: %v\n%s", err, stderr.String())
	}
	var r resolved
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("app printed %q: %v", out, err)
	}
	return r, stderr.String()
}

// TestReleaseZeroRunsTheImage: before any release, boot.cjs runs the
// image's own entry from AETHER_APP_DIR (or the working directory, for
// "."), with the image's dependencies, and records the app's directory
// for the fetcher.
func TestReleaseZeroRunsTheImage(t *testing.T) {
	requireNode(t)
	for _, c := range []struct {
		name, code string
		appDirEnv  func(image string) string
	}{
		{"commonjs, app dir given", cjsApp, func(image string) string { return image }},
		{"commonjs, working directory", cjsApp, func(string) string { return sidecar.AppDirWorking }},
		{"esm with an exports map", esmApp, func(image string) string { return image }},
	} {
		t.Run(c.name, func(t *testing.T) {
			image := imageApp(t, c.code)
			if strings.Contains(c.name, "esm") {
				if err := os.WriteFile(filepath.Join(image, "package.json"), []byte(`{"name":"shop","type":"module"}`), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ws, err := release.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			got, _ := runBoot(t, ws, image, sidecar.EnvEntry+"=server.js", sidecar.EnvAppDir+"="+c.appDirEnv(image))
			if got.Cwd != image || !strings.Contains(got.Greeting, "from the image") {
				t.Errorf("release zero answered %+v; want the image's code in %s", got, image)
			}
			if got.Who == "esm" && got.Esm != "esm-only 2 with inner 3" {
				t.Errorf("esm-only resolved to %q", got.Esm)
			}
			l, err := ws.Loaded()
			if err != nil || l.Digest != "" || !l.Ready || l.AppDir != image {
				t.Errorf("loaded record %+v, %v; want release zero, ready, appDir %s", l, err, image)
			}
		})
	}
}

// TestReleaseUsesImageModules: a release that carries no node_modules
// resolves bare require and import against the image's node_modules,
// exports maps and transitive dependencies included, exactly as the image
// ran them; a release that carries its own uses those.
func TestReleaseUsesImageModules(t *testing.T) {
	requireNode(t)
	for _, c := range []struct {
		name  string
		files map[string][]byte
		want  string // in the greeting
	}{
		{"commonjs", map[string][]byte{"server.js": []byte(cjsApp)}, "hello cjs from the image"},
		{"esm", map[string][]byte{"package.json": []byte(`{"type":"module"}`), "server.js": []byte(esmApp)}, "hello esm from the image"},
		{"own node_modules", map[string][]byte{"server.js": []byte(cjsApp),
			"node_modules/greeting/index.js": []byte(`module.exports = (who) => 'hello ' + who + ' from the release';`)}, "hello cjs from the release"},
	} {
		t.Run(c.name, func(t *testing.T) {
			image := imageApp(t, cjsApp)
			ws, err := release.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := ws.UseImageModules(image); err != nil {
				t.Fatal(err)
			}
			publishFiles(t, ws, c.files)
			got, _ := runBoot(t, ws, image, sidecar.EnvEntry+"=server.js", sidecar.EnvAppDir+"="+image)
			if got.Greeting != c.want {
				t.Errorf("greeting %q, want %q (%+v)", got.Greeting, c.want, got)
			}
			if c.name == "esm" && got.Esm != "esm-only 2 with inner 3" {
				t.Errorf("esm-only resolved to %q", got.Esm)
			}
			if c.name == "commonjs" && got.From != filepath.Join(image, "node_modules/greeting/lib/index.js") {
				t.Errorf("greeting resolved to %s, want the image's real path", got.From)
			}
		})
	}
}

// TestImageModulesLearntFromBoot: with AETHER_APP_DIR "." the fetcher does
// not know the app's directory; when the first release starts before the
// app ever ran, boot.cjs records the directory and waits, and the fetcher's
// wait for the release links node_modules from the record.
func TestImageModulesLearntFromBoot(t *testing.T) {
	requireNode(t)
	image := imageApp(t, cjsApp)
	ws, err := release.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.UseImageModules(sidecar.AppDirWorking); err != nil {
		t.Fatal(err)
	}
	digest := publishFiles(t, ws, map[string][]byte{"server.js": []byte(cjsApp)})
	if _, err := os.Lstat(filepath.Join(ws.Dir(), sidecar.ImageModules)); !os.IsNotExist(err) {
		t.Fatalf("the link exists before the app told where its directory is: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waited := make(chan error, 1)
	go func() {
		_, err := waitLoaded(ctx, ws, digest, 0)
		waited <- err
	}()
	got, stderr := runBoot(t, ws, image, sidecar.EnvEntry+"=server.js", sidecar.EnvAppDir+"="+sidecar.AppDirWorking)
	if got.Greeting != "hello cjs from the image" || stderr != "" {
		t.Errorf("greeting %q, stderr %q; want the image's package", got.Greeting, stderr)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(ws.Dir(), sidecar.ImageModules)); err != nil || target != filepath.Join(image, "node_modules") {
		t.Errorf("link %s, %v", target, err)
	}
}
