package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// publishFiles publishes an artifact made of files to ws and returns its
// digest.
func publishFiles(t *testing.T, ws *release.Workspace, files map[string][]byte) string {
	t.Helper()
	b := tgz(t, files)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(b) }))
	defer srv.Close()
	sum := sha256.Sum256(b)
	tg, err := annotations.ParseTarget("sha256:"+hex.EncodeToString(sum[:]), srv.URL+"/a.tgz")
	if err != nil {
		t.Fatal(err)
	}
	client, err := release.NewHTTPClient("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Apply(context.Background(), client, tg, release.Limits{}); err != nil {
		t.Fatal(err)
	}
	return tg.Digest
}

// TestBootScript runs boot.cjs once, without --watch, for each kind of
// entry and each way it can fail.
func TestBootScript(t *testing.T) {
	requireNode(t)
	const cjs = `console.log(JSON.stringify({cwd: process.cwd(), argv1: process.argv[1], main: require.main === module}))`
	const esm = `console.log(JSON.stringify({cwd: process.cwd(), argv1: process.argv[1], main: import.meta.url.endsWith(process.argv[1])}))`
	cases := []struct {
		name    string
		files   map[string]string // nil: publish nothing
		entry   string
		wantOut string // the entry's argv1, relative to the release
		wantErr string // non-zero exit with this on stderr
	}{
		{name: "commonjs", files: map[string]string{"server.js": cjs}, entry: "server.js", wantOut: "server.js"},
		{name: "commonjs without extension", files: map[string]string{"lib/app.js": cjs}, entry: "lib/app", wantOut: "lib/app.js"},
		{name: "cjs extension in a module package", files: map[string]string{"package.json": `{"type":"module"}`, "s.cjs": cjs}, entry: "s.cjs", wantOut: "s.cjs"},
		{name: "mjs", files: map[string]string{"server.mjs": esm}, entry: "server.mjs", wantOut: "server.mjs"},
		{name: "type module", files: map[string]string{"package.json": `{"type":"module"}`, "src/index.js": esm}, entry: "src/index.js", wantOut: "src/index.js"},
		{name: "entry missing", files: map[string]string{"server.js": cjs}, entry: "", wantErr: "AETHER_ENTRY is not set"},
		{name: "entry not found", files: map[string]string{"server.js": cjs}, entry: "nope.js", wantErr: "AETHER_ENTRY nope.js not found"},
		{name: "absolute entry", files: map[string]string{"server.js": cjs}, entry: "/etc/passwd", wantErr: "must be a path relative to the artifact root"},
		{name: "entry outside the release", files: map[string]string{"server.js": cjs}, entry: "../../x.js", wantErr: "must be a path relative to the artifact root"},
		{name: "no release", entry: "server.js", wantErr: "no release is published"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ws, err := release.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			var digest string
			if tc.files != nil {
				files := map[string][]byte{}
				for k, v := range tc.files {
					files[k] = []byte(v)
				}
				digest = publishFiles(t, ws, files)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", filepath.Join(ws.Dir(), sidecar.BootFile))
			cmd.Env = append(os.Environ(), sidecar.EnvEntry+"="+tc.entry)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(stderr.String(), tc.wantErr) {
					t.Fatalf("exit %v, stderr %q; want a failure saying %q", err, stderr.String(), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			var got struct {
				Cwd, Argv1 string
				Main       bool
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("entry output %q: %v", out, err)
			}
			root, err := filepath.EvalSymlinks(filepath.Join(ws.Dir(), sidecar.CurrentLink))
			if err != nil {
				t.Fatal(err)
			}
			if got.Cwd != root {
				t.Errorf("cwd %s, want the release %s", got.Cwd, root)
			}
			if want := filepath.Join(root, tc.wantOut); got.Argv1 != want {
				t.Errorf("argv[1] %s, want %s", got.Argv1, want)
			}
			if !got.Main {
				t.Errorf("the entry does not see itself as the main module")
			}
			l, err := ws.Loaded()
			if err != nil || l.Digest != digest || !l.Ready || l.PID == 0 || time.Since(l.Time) > time.Minute {
				t.Errorf("loaded record %+v, %v; want %s ready", l, err, digest)
			}
		})
	}
}
