package release_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// TestOpenSkipsWhatItCannotRemove: the app may run as root and leave, in
// the volume it shares with the fetcher, a directory of its own under a
// name the fetcher uses for its temporary files. The review saw the
// fetcher crash-loop at Open (unlinkat: permission denied). Open must skip
// and report them, and publishing, rolling back and rejecting must not
// need their names. The fetcher runs as nobody here.
func TestOpenSkipsWhatItCannotRemove(t *testing.T) {
	stuck := []string{
		filepath.Join(sidecar.StateDir, ".tmp-loaded"),
		filepath.Join(sidecar.StateDir, ".tmp-rejected"),
		".tmp-current",
		filepath.Join(sidecar.ReleasesDir, ".tmp-node_modules"),
		filepath.Join(sidecar.ReleasesDir, ".tmp-staging-1"),
	}
	dir, ok := asOtherUser(t, func(dir string) {
		// As the fetcher would have made them, then the app's leftovers,
		// root's, each with a file inside.
		for _, d := range []struct {
			name string
			mode os.FileMode
		}{{sidecar.ReleasesDir, 0o755}, {sidecar.StateDir, os.ModeSticky | 0o777}} {
			p := filepath.Join(dir, d.name)
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, d.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range stuck {
			if err := os.MkdirAll(filepath.Join(dir, s), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, s, "root's"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	if !ok {
		return
	}
	f := fixtureAt(t, filepath.Dir(dir), dir)
	left := f.ws.Leftovers()
	for _, err := range left {
		t.Logf("skipped: %v", err)
	}
	if len(left) != len(stuck) {
		t.Errorf("%d leftovers reported, want %d", len(left), len(stuck))
	}
	if err := f.ws.UseImageModules("/app"); err != nil {
		t.Errorf("UseImageModules: %v", err)
	}
	a := f.publish("/a.tgz", "a")
	f.publish("/b.tgz", "b")
	if err := f.ws.Reject(f.ws.Current()); err != nil {
		t.Errorf("Reject: %v", err)
	}
	if err := f.ws.Rollback(a.Digest); err != nil {
		t.Errorf("Rollback: %v", err)
	}
	if got := f.ws.Current(); got != a.Digest {
		t.Errorf("Current() = %q after the rollback, want %q", got, a.Digest)
	}
	for _, s := range stuck {
		if _, err := os.Stat(filepath.Join(dir, s, "root's")); err != nil {
			t.Errorf("the app's %s: %v", s, err)
		}
	}
}
