package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/aether-dev/aether-devhot/test/framework/appimage"
)

// files flattens img into its entries by path.
func files(t *testing.T, img v1.Image) map[string]appimage.Entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]appimage.Entry{}
	for _, l := range layers {
		es, err := appimage.LayerEntries(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			out[e.Path] = e
		}
	}
	return out
}

// TestBuildBases checks the two Node.js bases against what the official
// images have: node:20's layout, config and users, and the distroless
// one's (no shell, no npm, node as the ENTRYPOINT). It needs the machine's
// node and npm, as make test does.
func TestBuildBases(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node on this machine")
	}
	if _, err := os.Stat(hostNpm); err != nil {
		t.Skipf("no %s on this machine", hostNpm)
	}
	bases, err := BuildBases()
	if err != nil {
		t.Fatal(err)
	}
	version, err := exec.Command("node", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}

	node := bases["node:20"]
	cf, err := node.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Entrypoint: []string{"docker-entrypoint.sh"},
		Cmd:        []string{"node"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NODE_VERSION=" + strings.TrimPrefix(strings.TrimSpace(string(version)), "v")},
	}
	if !reflect.DeepEqual(cf.Config, want) {
		t.Errorf("node:20 config %+v, want %+v", cf.Config, want)
	}
	if layers, _ := node.Layers(); len(layers) != 4 {
		t.Errorf("node:20 has %d layers, want 4 (root, node, npm, entrypoint)", len(layers))
	}
	fs := files(t, node)
	for p, link := range map[string]string{
		"/usr/local/bin/npm": "../lib/node_modules/npm/bin/npm-cli.js",
		"/usr/local/bin/npx": "../lib/node_modules/npm/bin/npx-cli.js",
		"/bin":               "usr/bin",
	} {
		if e := fs[p]; !e.IsSymlink() || e.Link != link {
			t.Errorf("node:20 %s: %+v, want a symlink to %s", p, e, link)
		}
	}
	for _, p := range []string{"/usr/local/bin/node", "/usr/local/bin/docker-entrypoint.sh", "/usr/local/lib/node_modules/npm/bin/npm-cli.js", "/usr/bin/env"} {
		if e, ok := fs[p]; !ok || e.Mode&0o111 == 0 {
			t.Errorf("node:20 %s: %+v, want an executable file", p, e)
		}
	}
	if sh := fs["/usr/bin/sh"]; !sh.IsSymlink() && len(sh.Data) == 0 {
		t.Errorf("node:20 has no /bin/sh")
	}
	if home := fs["/home/node"]; !home.IsDir() || home.UID != 1000 {
		t.Errorf("node:20 /home/node: %+v, want node's directory", home)
	}
	if !strings.Contains(string(fs["/etc/passwd"].Data), "node:x:1000:1000:") {
		t.Errorf("node:20 /etc/passwd has no user node: %s", fs["/etc/passwd"].Data)
	}

	distroless := bases[DistrolessImage]
	dcf, err := distroless.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dcf.Config.Entrypoint, []string{"/nodejs/bin/node"}) || dcf.Config.Cmd != nil || dcf.Config.WorkingDir != "" {
		t.Errorf("distroless config %+v, want ENTRYPOINT /nodejs/bin/node, no CMD, no WORKDIR", dcf.Config)
	}
	for _, e := range dcf.Config.Env {
		if strings.HasPrefix(e, "NODE_VERSION=") {
			t.Errorf("distroless has %s", e)
		}
	}
	dfs := files(t, distroless)
	if _, ok := dfs["/nodejs/bin/node"]; !ok {
		t.Errorf("distroless has no /nodejs/bin/node")
	}
	for _, p := range []string{"/usr/bin/sh", "/usr/bin/dash", "/usr/local/bin/npm"} {
		if _, ok := dfs[p]; ok {
			t.Errorf("distroless has %s", p)
		}
	}
	if !strings.Contains(string(dfs["/etc/passwd"].Data), "nonroot:x:65532:65532:") {
		t.Errorf("distroless /etc/passwd has no nonroot: %s", dfs["/etc/passwd"].Data)
	}

	// The same machine makes the same images.
	again, err := BuildBases()
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := node.Digest()
	d2, _ := again["node:20"].Digest()
	if d1 != d2 {
		t.Errorf("node:20 digests %s and %s", d1, d2)
	}
}

// TestDockerEntrypoint runs node:20's docker-entrypoint.sh with the
// machine's sh and node: like the official one, it prepends node when the
// first argument is a flag or not a command, and runs commands as they are.
func TestDockerEntrypoint(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node on this machine")
	}
	script := filepath.Join(t.TempDir(), "docker-entrypoint.sh")
	if err := os.WriteFile(script, []byte(dockerEntrypoint), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.js"), []byte("console.log('app ran')"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-e", "console.log('flag: node prepended')"}, "flag: node prepended"},
		{[]string{"--require=./app.js", "-e", "0"}, "app ran"},
		{[]string{"app.js"}, "app ran"}, // a file, not executable: node app.js
		{[]string{"echo", "a command"}, "a command"},
		{[]string{"node", "-e", "console.log('node as given')"}, "node as given"},
	}
	for _, tt := range tests {
		cmd := exec.Command(script, tt.args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tt.want {
			t.Errorf("docker-entrypoint.sh %q: %q (%v), want %q", tt.args, out, err, tt.want)
		}
	}
}
