package release_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// TestPreinstall is the table of what Apply does with a release whose
// lockfile the pod has not installed, by what the running app (here, the
// test in boot.cjs's place, writing its files; test/node runs the real
// one) says: it waits for the app's install and publishes after it, or
// publishes nothing on a failure, or leaves the install to the release's
// own process when no running process takes the request.
func TestPreinstall(t *testing.T) {
	lock := `{"lockfileVersion":3,"packages":{"":{}}}`
	key, _ := release.DepsKey(strings.NewReader(lock))
	type answer struct {
		after time.Duration
		deps  release.Deps
	}
	cases := []struct {
		name      string
		installer bool
		exited    bool
		entry     bool // the cache entry is there already
		fifo      bool // the app put a FIFO where it answers
		answers   []answer
		cancel    time.Duration
		// want
		published  bool
		deps       release.DepsState // "" for no Result.Deps
		installing int
		reason     refresh.Reason
		final      bool
		request    bool // a request was written
	}{
		{name: "installed while the app serves", installer: true, answers: []answer{
			{0, release.Deps{State: release.DepsInstalling, Manager: "npm"}},
			{200 * time.Millisecond, release.Deps{State: release.DepsInstalled, Manager: "npm", Ms: 200}}},
			published: true, deps: release.DepsInstalled, installing: 1, request: true},
		{name: "the image's lockfile, at once", installer: true, answers: []answer{{0, release.Deps{State: release.DepsImage}}},
			published: true, deps: release.DepsImage, request: true},
		{name: "a failed install publishes nothing", installer: true, answers: []answer{
			{0, release.Deps{State: release.DepsInstalling, Manager: "npm"}},
			{50 * time.Millisecond, release.Deps{State: release.DepsFailed, Reason: refresh.ReasonDepsInstall, Message: "npm ci failed (exit code 1)", Output: "npm error 404 Not Found"}}},
			installing: 1, reason: refresh.ReasonDepsInstall, final: true, request: true},
		{name: "no package manager", installer: true, answers: []answer{{0, release.Deps{State: release.DepsFailed, Reason: refresh.ReasonNoPackageManager, Message: "package-lock.json needs npm"}}},
			reason: refresh.ReasonNoPackageManager, final: true, request: true},
		{name: "a reason outside the step's is an install failure", installer: true, answers: []answer{{0, release.Deps{State: release.DepsFailed, Reason: refresh.ReasonChecksum, Message: "x"}}},
			reason: refresh.ReasonDepsInstall, final: true, request: true},
		{name: "a state that is none", installer: true, answers: []answer{{0, release.Deps{State: "weird"}}},
			reason: refresh.ReasonDepsInstall, final: true, request: true},
		{name: "no process takes requests: the release installs as it starts", installer: false, published: true},
		{name: "the app has exited", installer: true, exited: true, published: true},
		{name: "the entry is there: nothing to ask", installer: true, entry: true, published: true},
		{name: "nobody takes the request in time", installer: true, published: true, request: true},
		{name: "a FIFO for an answer holds nothing", installer: true, fifo: true, published: true, request: true},
		{name: "a newer digest cancels the wait", installer: true, answers: []answer{{0, release.Deps{State: release.DepsInstalling}}},
			cancel: 300 * time.Millisecond, installing: 1, reason: refresh.ReasonDownload, request: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			rec := release.Loaded{Digest: "", PID: 7, Ready: true, Installer: c.installer}
			if c.exited {
				rec.Exit = &release.Exit{Code: 1}
			}
			writeJSON(t, filepath.Join(f.dir, sidecar.LoadedFile), rec)
			if c.entry {
				if err := os.MkdirAll(filepath.Join(f.dir, sidecar.DepsDir, key, "node_modules"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if c.fifo {
				if err := syscall.Mkfifo(filepath.Join(f.dir, sidecar.InstallResultFile), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			requested := make(chan release.InstallRequest, 1)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				// boot.cjs's part: take the request, answer in turn.
				var req release.InstallRequest
				for req.ID == "" {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					if b, err := os.ReadFile(filepath.Join(f.dir, sidecar.InstallRequestFile)); err == nil {
						_ = json.Unmarshal(b, &req)
					}
				}
				requested <- req
				for _, a := range c.answers {
					time.Sleep(a.after)
					writeJSON(t, filepath.Join(f.dir, sidecar.InstallResultFile), release.InstallResult{ID: req.ID, Deps: a.deps})
				}
			}()
			tg := f.target("/a.tgz", tgz(t, file("package.json", "{}"), file("package-lock.json", lock), file("server.js", "\n")))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if c.cancel > 0 {
				time.AfterFunc(c.cancel, cancel)
			}
			installing := 0
			res, err := f.ws.Apply(ctx, f.client, tg, release.Limits{}, release.WithInstalling(func(d release.Deps) {
				installing++
				if d.Lockfile != "package-lock.json" || d.Key != key {
					t.Errorf("installing %+v: want package-lock.json, key %s", d, key)
				}
			}))
			if got := f.ws.Current() == tg.Digest; got != c.published {
				t.Errorf("published %v, want %v (err %v)", got, c.published, err)
			}
			if (err == nil) != (c.reason == "") || release.ReasonOf(err) != c.reason && c.reason != "" || release.IsFinal(err) != c.final {
				t.Errorf("err %v (reason %s, final %v), want reason %q final %v", err, release.ReasonOf(err), release.IsFinal(err), c.reason, c.final)
			}
			if c.reason == refresh.ReasonDepsInstall && len(c.answers) > 1 && !strings.Contains(err.Error(), "npm ci failed (exit code 1):\nnpm error 404 Not Found") {
				t.Errorf("the error %q lacks the app's message and npm's lines", err)
			}
			var got release.DepsState
			if res.Deps != nil {
				got = res.Deps.State
				if res.Deps.Key != key || res.Deps.Lockfile != "package-lock.json" {
					t.Errorf("Result.Deps %+v lacks the lockfile and key", res.Deps)
				}
			}
			if got != c.deps || installing != c.installing {
				t.Errorf("Result.Deps %q, installing called %d times; want %q, %d", got, installing, c.deps, c.installing)
			}
			var req release.InstallRequest
			select {
			case req = <-requested:
			default:
			}
			if (req.ID != "") != c.request {
				t.Errorf("request %+v, want one: %v", req, c.request)
			}
			if c.request && (req.Key != key || req.Lockfile != "package-lock.json" || !strings.HasPrefix(req.Dir, sidecar.ReleasesDir+"/.tmp-")) {
				t.Errorf("request %+v: want the staged release's lockfile and key", req)
			}
			if _, err := os.Lstat(filepath.Join(f.dir, sidecar.InstallRequestFile)); !os.IsNotExist(err) {
				t.Errorf("the request is left after Apply: %v", err)
			}
		})
	}
}

func writeJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Error(err)
	}
}
