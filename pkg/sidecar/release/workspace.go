package release

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// bootScript is written once as .aether/boot.cjs; see boot.cjs for what it does.
//
//go:embed boot.cjs
var bootScript []byte

// Permissions of what the fetcher writes. The app may run under any uid, so
// everything it reads is world-readable and .aether, where it writes the
// loaded record, is world-writable with the sticky bit so it cannot remove
// boot.cjs.
const (
	dirMode      fs.FileMode = 0o755
	fileMode     fs.FileMode = 0o644
	execMode     fs.FileMode = 0o755
	stateDirMode             = fs.ModeSticky | 0o777
)

// tempPrefix starts the name of everything in progress: staging directories
// and releases being pruned under releases/, the next current link, and
// boot.cjs before it is linked into place. Open removes leftovers, which only
// a crash can leave.
const tempPrefix = ".tmp-"

// Workspace is the volume shared by the fetcher and the app:
//
//	releases/<hex>/     one extracted artifact per digest, never modified
//	current             relative symlink to releases/<hex>
//	.aether/boot.cjs    what `node --watch` runs; loads current/$AETHER_ENTRY
//	.aether/loaded      written by boot.cjs: what it loaded, when, as which pid
type Workspace struct {
	dir      string
	releases string
	// mu serialises publishing, so that a superseded Apply still cleaning
	// up never races a newer one for current or the prune.
	mu sync.Mutex
}

// Open prepares dir as a workspace and returns it. It writes .aether/boot.cjs
// only if it is absent: `node --watch` watches that file's inode, so it is
// never replaced. Leftovers of a crashed Apply are removed.
func Open(dir string) (*Workspace, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	w := &Workspace{dir: dir, releases: filepath.Join(dir, sidecar.ReleasesDir)}
	// The root is usually an emptyDir that the kubelet made, 0777 and not
	// ours to chmod.
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, err
	}
	if err := mkdirMode(w.releases, dirMode); err != nil {
		return nil, err
	}
	if err := mkdirMode(filepath.Join(dir, sidecar.StateDir), stateDirMode); err != nil {
		return nil, err
	}
	for _, d := range []string{dir, w.releases, filepath.Join(dir, sidecar.StateDir)} {
		if err := removeTemps(d); err != nil {
			return nil, err
		}
	}
	if err := w.writeBoot(); err != nil {
		return nil, err
	}
	return w, nil
}

// mkdirMode creates dir if needed and sets its mode exactly, whatever the
// umask; an existing directory is left as it is apart from the mode.
func mkdirMode(dir string, mode fs.FileMode) error {
	if err := os.Mkdir(dir, mode.Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode()&(fs.ModePerm|fs.ModeSticky) == mode {
		return nil
	}
	return os.Chmod(dir, mode)
}

func removeTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeBoot creates boot.cjs if it does not exist. It is written to a temp
// file and hard-linked into place, so a crash never leaves a partial
// boot.cjs and an existing one is never replaced.
func (w *Workspace) writeBoot() error {
	boot := filepath.Join(w.dir, sidecar.BootFile)
	if _, err := os.Lstat(boot); err == nil {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(boot), tempPrefix+"boot-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(bootScript); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(f.Name(), boot); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// Dir returns the absolute path of the workspace.
func (w *Workspace) Dir() string { return w.dir }

// Current returns the digest that the current link points to, or "" if no
// release is published, so that a restarted fetcher does not download what
// is already live.
func (w *Workspace) Current() string {
	hex := w.currentHex()
	if hex == "" {
		return ""
	}
	return digest.Prefix + hex
}

// currentHex returns the hex of the live release, "" if there is none.
func (w *Workspace) currentHex() string {
	target, err := os.Readlink(filepath.Join(w.dir, sidecar.CurrentLink))
	if err != nil {
		return ""
	}
	hex, ok := strings.CutPrefix(target, sidecar.ReleasesDir+"/")
	if !ok || !digest.IsHex(hex) {
		return ""
	}
	if fi, err := os.Stat(filepath.Join(w.releases, hex)); err != nil || !fi.IsDir() {
		return ""
	}
	return hex
}

// Touch sets the mtime of boot.cjs to now without replacing it, which makes
// `node --watch` restart the app once.
func (w *Workspace) Touch() error {
	now := time.Now()
	return os.Chtimes(filepath.Join(w.dir, sidecar.BootFile), now, now)
}
