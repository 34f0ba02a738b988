package release

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// TestWatchedInodes: which lists the fetcher trusts, and what a trusted
// list lets it link and remove.
func TestWatchedInodes(t *testing.T) {
	ino := func(t *testing.T, p string) uint64 {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	for _, tc := range []struct {
		name string
		// list is .aether/watched, with %d for the watched file's inode;
		// "-" for none.
		list   string
		loaded bool
		known  bool
	}{
		{"no app yet", "-", false, true},
		{"an app, no list (not under node --watch)", "-", true, false},
		{"a header only", "ppid 7\n", true, false},
		{"no header", "%d\n", true, false},
		{"a list", "ppid 7\n%d\n", true, true},
		{"too long", "ppid 7\n%d\n" + strings.Repeat("1\n", maxWatchedBytes/2), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(w.releases, "r")
			if err := os.MkdirAll(dir, dirMode); err != nil {
				t.Fatal(err)
			}
			loaded, free := filepath.Join(dir, "loaded.js"), filepath.Join(dir, "asset.txt")
			for _, p := range []string{loaded, free} {
				if err := os.WriteFile(p, []byte(p), fileMode); err != nil {
					t.Fatal(err)
				}
			}
			if tc.loaded {
				if err := os.WriteFile(filepath.Join(w.dir, sidecar.LoadedFile), []byte(`{"digest":""}`), fileMode); err != nil {
					t.Fatal(err)
				}
			}
			if tc.list != "-" {
				if err := os.WriteFile(filepath.Join(w.dir, sidecar.WatchedFile), fmt.Appendf(nil, tc.list, ino(t, loaded)), fileMode); err != nil {
					t.Fatal(err)
				}
			}
			s := w.watched()
			if s.known != tc.known {
				t.Fatalf("known = %v, want %v", s.known, tc.known)
			}
			fi, _ := os.Stat(loaded)
			fa, _ := os.Stat(free)
			watchedListed := tc.known && strings.Contains(tc.list, "%d")
			if s.linkable(fi) != (tc.known && !watchedListed) || s.linkable(fa) != tc.known {
				t.Errorf("linkable: watched file %v, other %v", s.linkable(fi), s.linkable(fa))
			}
			// Both files get a second link in another release; removing
			// the first release takes what restarts no app.
			other := filepath.Join(w.releases, "s")
			if err := os.MkdirAll(other, dirMode); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{loaded, free} {
				if err := os.Link(p, filepath.Join(other, filepath.Base(p))); err != nil {
					t.Fatal(err)
				}
			}
			s = w.watched()
			all := s.removeTree(dir)
			_, loadedErr := os.Stat(loaded)
			_, freeErr := os.Stat(free)
			if wantKept := !tc.known || watchedListed; all == wantKept || (loadedErr == nil) != wantKept {
				t.Errorf("removeTree: all %v, watched file kept %v; want it kept %v", all, loadedErr == nil, wantKept)
			}
			if (freeErr == nil) != !tc.known {
				t.Errorf("removeTree: other file kept %v, want %v", freeErr == nil, !tc.known)
			}
		})
	}
}
