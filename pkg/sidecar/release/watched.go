package release

import (
	"bufio"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// Hard links and `node --watch`. The watcher watches the inode of every
// file the app has loaded since the container started, and a link or an
// unlink that leaves the inode in place changes its link count: an
// attribute change that restarts the app (measured here on Node 20; the
// unlink of a file's last link does not). So a delta release hard-links a
// file of a kept release (60 ms for 5,000 files here, where copies take
// about a second) unless its inode is watched, and copies it then; and
// removing a release leaves in place the links of watched inodes that
// other releases share, until the app's container restarts.
//
// boot.cjs tells which inodes are watched: `node --watch` has its child
// report each file it loads to the parent over IPC (watch:require,
// watch:import), and boot.cjs, the child's first module, sees each
// report on its way out and appends the file's inode to
// sidecar.WatchedFile, under a first line "ppid <pid>" that names the
// watching process, so that a new container starts a new list.

// maxWatchedBytes bounds what the fetcher reads of the list, which lists
// each inode once: about 200,000 of them. A longer one is not trusted.
const maxWatchedBytes = 4 << 20

// watchedInodes is the set that boot.cjs wrote; known is false when there
// is no list the fetcher can trust (no app ran under node --watch yet, or
// one that did not report: an older or newer Node), and then nothing may
// be linked, and every removal is safe only if it takes a last link.
type watchedInodes struct {
	known bool
	inos  map[uint64]bool
}

// watched reads boot.cjs's list. An app that has never loaded a release
// has watched no file of one, so no list is a known empty set then.
func (w *Workspace) watched() watchedInodes {
	f, err := os.Open(filepath.Join(w.dir, sidecar.WatchedFile))
	if err != nil {
		if _, lerr := w.Loaded(); lerr != nil {
			return watchedInodes{known: true}
		}
		return watchedInodes{}
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() > maxWatchedBytes {
		// The newest inodes come last: a list read in part protects
		// the old and not the new.
		return watchedInodes{}
	}
	sc := bufio.NewScanner(io.LimitReader(f, maxWatchedBytes))
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "ppid ") {
		return watchedInodes{}
	}
	set := watchedInodes{inos: map[uint64]bool{}}
	for sc.Scan() {
		if ino, err := strconv.ParseUint(strings.TrimSpace(sc.Text()), 10, 64); err == nil {
			set.inos[ino] = true
		}
	}
	// The entry itself is always reported: a list without it is one the
	// fetcher cannot trust.
	set.known = len(set.inos) > 0
	return set
}

// linkable reports whether fi's inode may get another link.
func (s watchedInodes) linkable(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && s.known && !s.inos[st.Ino]
}

// removable reports whether removing the file fi describes restarts no
// app: it is the inode's last link, or the inode is not watched.
func (s watchedInodes) removable(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink <= 1 {
		return true
	}
	return s.known && !s.inos[st.Ino]
}

// removeTree removes dir but for the links that removable keeps, and the
// directories that hold them; it reports whether it removed all of dir.
func (s watchedInodes) removeTree(dir string) bool {
	all := true
	entries, err := os.ReadDir(dir)
	if err != nil {
		return os.Remove(dir) == nil
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			all = s.removeTree(p) && all
			continue
		}
		fi, err := e.Info()
		if err == nil && !s.removable(fi) {
			all = false
			continue
		}
		if os.Remove(p) != nil {
			all = false
		}
	}
	return os.Remove(dir) == nil && all
}
