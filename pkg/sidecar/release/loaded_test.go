package release_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// writeLoaded writes the record as boot.cjs does.
func writeLoaded(t *testing.T, dir, digest string, ready bool) {
	t.Helper()
	rec := fmt.Sprintf(`{"digest":%q,"pid":4242,"time":"2026-01-02T03:04:05.678Z","ready":%t}`+"\n", digest, ready)
	tmp := filepath.Join(dir, sidecar.LoadedFile+".tmp")
	if err := os.WriteFile(tmp, []byte(rec), 0o644); err != nil {
		t.Error(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, sidecar.LoadedFile)); err != nil {
		t.Error(err)
	}
}

func TestLoaded(t *testing.T) {
	ws, err := release.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Loaded(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Loaded() before the app started: %v, want ErrNotExist", err)
	}
	writeLoaded(t, ws.Dir(), "sha256:abc", true)
	l, err := ws.Loaded()
	if err != nil {
		t.Fatal(err)
	}
	want := release.Loaded{Digest: "sha256:abc", PID: 4242, Time: time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC), Ready: true}
	if l != want {
		t.Errorf("Loaded() = %+v, want %+v", l, want)
	}
}

func TestLoadedExit(t *testing.T) {
	ws, err := release.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec := `{"digest":"sha256:abc","pid":7,"time":"2026-01-02T03:04:05Z","ready":false,"exit":{"code":1,"time":"2026-01-02T03:04:06Z",` +
		`"error":{"name":"Error","message":"Cannot find module 'left-pad'\nRequire stack:\n- server.js","code":"MODULE_NOT_FOUND","frames":["at Object.<anonymous> (server.js:1:1)"]}}}`
	if err := os.WriteFile(filepath.Join(ws.Dir(), sidecar.LoadedFile), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := ws.Loaded()
	if err != nil {
		t.Fatal(err)
	}
	want := "Error [MODULE_NOT_FOUND]: Cannot find module 'left-pad'\nRequire stack:\n- server.js\n    at Object.<anonymous> (server.js:1:1)"
	if l.Exit == nil || l.Exit.Code != 1 || l.Exit.String() != want {
		t.Errorf("Exit = %+v, String()\n%s\nwant\n%s", l.Exit, l.Exit, want)
	}
}

func TestExitString(t *testing.T) {
	for _, c := range []struct {
		exit release.Exit
		want string
	}{
		{release.Exit{Code: 3}, "the process exited with code 3"},
		{release.Exit{Code: 1, Error: &release.AppError{Name: "SyntaxError", Message: "Unexpected identifier 'oops'", Frames: []string{"server.js:2"}}},
			"SyntaxError: Unexpected identifier 'oops'\n    at server.js:2"},
		{release.Exit{Code: 1, Error: &release.AppError{Name: "TypeError", Message: "boom", Frames: []string{"at f (lib/a.js:1:21)", "at lib/a.js:2:1"}}},
			"TypeError: boom\n    at f (lib/a.js:1:21)\n    at lib/a.js:2:1"},
	} {
		if got := c.exit.String(); got != c.want {
			t.Errorf("String()\n got %q\nwant %q", got, c.want)
		}
	}
}

// TestLoadedHostile: the app writes .aether/loaded and may put anything
// there. A FIFO must not hold the fetcher (a plain read blocks until a
// writer comes), a symlink is not followed, and a huge file is not read.
func TestLoadedHostile(t *testing.T) {
	cases := []struct {
		name string
		make func(t *testing.T, file string)
	}{
		{"fifo", func(t *testing.T, file string) {
			if err := syscall.Mkfifo(file, 0o666); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink to a device", func(t *testing.T, file string) {
			if err := os.Symlink("/dev/zero", file); err != nil {
				t.Fatal(err)
			}
		}},
		{"huge", func(t *testing.T, file string) {
			if err := os.WriteFile(file, []byte(`{"digest":"`+strings.Repeat("x", 1<<20)+`"}`), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws, err := release.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			tc.make(t, filepath.Join(ws.Dir(), sidecar.LoadedFile))
			done := make(chan error, 1)
			go func() {
				_, err := ws.Loaded()
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Error("Loaded() accepted it")
				}
				t.Log(err)
			case <-time.After(5 * time.Second):
				t.Fatal("Loaded() blocked")
			}
		})
	}
}
