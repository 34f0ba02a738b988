package release_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// TestWaitLoadedRetouches loses the first touch, as Node does when it
// arrives mid-restart, and expects WaitLoaded to touch boot.cjs again.
func TestWaitLoadedRetouches(t *testing.T) {
	ws, err := release.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	boot := filepath.Join(ws.Dir(), sidecar.BootFile)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(boot, old, old); err != nil {
		t.Fatal(err)
	}
	go func() {
		// The app comes up only once it sees a touch.
		for {
			fi, err := os.Stat(boot)
			if err == nil && fi.ModTime().After(old.Add(time.Minute)) {
				writeLoaded(t, ws.Dir(), "sha256:new", true)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	took, err := ws.WaitLoaded(ctx, "sha256:new", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if took < 50*time.Millisecond {
		t.Errorf("took %v, before the re-touch could have happened", took)
	}
}

func TestWaitLoadedGivesUp(t *testing.T) {
	ws, err := release.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	writeLoaded(t, ws.Dir(), "sha256:old", true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := ws.WaitLoaded(ctx, "sha256:new", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want DeadlineExceeded", err)
	}
}

// TestWaitLoadedLetsSlowAppLoad sees a process that has chosen the release
// but is still loading: touching it would restart it, so WaitLoaded must
// only wait.
func TestWaitLoadedLetsSlowAppLoad(t *testing.T) {
	ws, err := release.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	boot := filepath.Join(ws.Dir(), sidecar.BootFile)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(boot, old, old); err != nil {
		t.Fatal(err)
	}
	writeLoaded(t, ws.Dir(), "sha256:new", false)
	go func() {
		time.Sleep(200 * time.Millisecond)
		writeLoaded(t, ws.Dir(), "sha256:new", true)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ws.WaitLoaded(ctx, "sha256:new", 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(boot); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("boot.cjs touched while the app was loading")
	}
}

// TestWaitLoadedUnreadable stops on a record it cannot read instead of
// touching, and so restarting the app, every retouch.
func TestWaitLoadedUnreadable(t *testing.T) {
	ws, err := release.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws.Dir(), sidecar.LoadedFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ws.WaitLoaded(ctx, "sha256:new", 10*time.Millisecond); err == nil || ctx.Err() != nil {
		t.Errorf("WaitLoaded on a broken record: %v, want an error at once", err)
	}
}
