package node_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// TestBootErrorRecord runs boot.cjs under real node on entries that fail,
// CommonJS and ESM, and checks the exit record the health gate reads: the
// error's name, message and code, and the frames inside the release, with
// paths relative to it.
func TestBootErrorRecord(t *testing.T) {
	requireNode(t)
	cases := []struct {
		name      string
		files     map[string]string
		entry     string
		wantReady bool
		wantCode  int
		want      *release.AppError // nil: no error, only an exit code
	}{
		{
			name:  "commonjs syntax error",
			files: map[string]string{"server.js": "const a = 1;\nconst b = oops oops;\n"},
			entry: "server.js", wantCode: 1,
			want: &release.AppError{Name: "SyntaxError", Message: "Unexpected identifier 'oops'", Frames: []string{"server.js:2"}},
		},
		{
			name:  "commonjs missing module",
			files: map[string]string{"server.js": "require('left-pad');\n"},
			entry: "server.js", wantCode: 1,
			want: &release.AppError{Name: "Error", Code: "MODULE_NOT_FOUND", Message: "Cannot find module 'left-pad'\nRequire stack:\n- server.js",
				Frames: []string{"at Object.<anonymous> (server.js:1:1)"}},
		},
		{
			name:  "commonjs throw in a required file",
			files: map[string]string{"server.js": "require('./lib/db');\n", "lib/db.js": "function connect() { throw new Error('ECONNREFUSED 10.0.0.1:5432') }\nconnect();\n"},
			entry: "server.js", wantCode: 1,
			want: &release.AppError{Name: "Error", Message: "ECONNREFUSED 10.0.0.1:5432",
				Frames: []string{"at connect (lib/db.js:1:28)", "at Object.<anonymous> (lib/db.js:2:1)", "at Object.<anonymous> (server.js:1:1)"}},
		},
		{
			// Node 20 keeps an ES module's SyntaxError location out of its
			// stack; the record has the message, the app's log the location.
			name:  "esm syntax error",
			files: map[string]string{"server.mjs": "export const b = oops oops;\n"},
			entry: "server.mjs", wantCode: 1,
			want: &release.AppError{Name: "SyntaxError", Message: "Unexpected identifier 'oops'"},
		},
		{
			name:  "esm missing package",
			files: map[string]string{"package.json": `{"type":"module"}`, "src/index.js": "import pad from 'left-pad';\n"},
			entry: "src/index.js", wantCode: 1,
			want: &release.AppError{Name: "Error", Code: "ERR_MODULE_NOT_FOUND", Message: "Cannot find package 'left-pad' imported from src/index.js"},
		},
		{
			name:  "esm throw at the top level",
			files: map[string]string{"server.mjs": "function start() { throw new TypeError('PORT must be a number') }\nstart();\n"},
			entry: "server.mjs", wantCode: 1,
			want: &release.AppError{Name: "TypeError", Message: "PORT must be a number", Frames: []string{"at start (server.mjs:1:26)", "at server.mjs:2:1"}},
		},
		{
			name:  "exit before ready",
			files: map[string]string{"server.js": "process.exit(3);\n"},
			entry: "server.js", wantCode: 3,
		},
		{
			name:      "a crash after it loaded",
			files:     map[string]string{"server.js": "setTimeout(() => { null.x }, 20);\n"},
			entry:     "server.js",
			wantReady: true, wantCode: 1,
			want: &release.AppError{Name: "TypeError", Message: "Cannot read properties of null (reading 'x')", Frames: []string{"at Timeout._onTimeout (server.js:1:25)"}},
		},
		{
			name:      "an unhandled rejection after it loaded",
			files:     map[string]string{"server.mjs": "setTimeout(() => Promise.reject(new RangeError('out of range')), 20);\n"},
			entry:     "server.mjs",
			wantReady: true, wantCode: 1,
			want: &release.AppError{Name: "RangeError", Message: "out of range", Frames: []string{"at Timeout._onTimeout (server.mjs:1:33)"}},
		},
		{
			name:  "a thrown string",
			files: map[string]string{"server.js": "throw 'config missing';\n"},
			entry: "server.js", wantCode: 1,
			want: &release.AppError{Name: "Error", Message: "a non-error was thrown: config missing"},
		},
		{
			name:  "entry not in the release",
			files: map[string]string{"server.js": "1"},
			entry: "dist/server.js", wantCode: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ws, err := release.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			files := map[string][]byte{}
			for k, v := range tc.files {
				files[k] = []byte(v)
			}
			digest := publishFiles(t, ws, files)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", filepath.Join(ws.Dir(), sidecar.BootFile))
			cmd.Env = append(os.Environ(), sidecar.EnvEntry+"="+tc.entry)
			out, err := cmd.CombinedOutput()
			exitErr, ok := err.(*exec.ExitError)
			if !ok || exitErr.ExitCode() != tc.wantCode {
				t.Fatalf("exit %v, want code %d; output:\n%s", err, tc.wantCode, out)
			}
			l, err := ws.Loaded()
			if err != nil {
				t.Fatal(err)
			}
			if l.Digest != digest || l.Ready != tc.wantReady || l.Exit == nil || l.Exit.Code != tc.wantCode {
				t.Fatalf("record %+v, want %s ready=%v exit %d", l, digest, tc.wantReady, tc.wantCode)
			}
			switch {
			case tc.name == "entry not in the release":
				if e := l.Exit.Error; e == nil || !strings.Contains(e.Message, "AETHER_ENTRY dist/server.js not found in release") {
					t.Errorf("error %+v, want boot.cjs's own", e)
				}
			case !reflect.DeepEqual(l.Exit.Error, tc.want):
				t.Errorf("error\n got %#v\nwant %#v", l.Exit.Error, tc.want)
			}
			if e := l.Exit.Error; e != nil && (strings.Contains(e.Message, ws.Dir()) || strings.Contains(strings.Join(e.Frames, " "), ws.Dir())) {
				t.Errorf("the record names the workspace's absolute path: %+v", e)
			}
		})
	}
}
