package release

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
// and releases being removed under releases/, the next current link, and
// boot.cjs before it is linked into place. Each name ends with a random
// part, so that a leftover never stands in the way. Open removes leftovers,
// which a crash can leave, and skips what it cannot remove.
const tempPrefix = ".tmp-"

// Workspace is the volume shared by the fetcher and the app:
//
//	releases/<hex>/     one extracted artifact per digest, never modified
//	current             relative symlink to releases/<hex>
//	.aether/boot.cjs    what `node --watch` runs; loads current/$AETHER_ENTRY
//	.aether/loaded      written by boot.cjs: what it loaded, when, as which pid
//	manifests/roots/<hex>  the root of the delta release releases/<hex>
//	manifests/parts/<hex>  a part that one of those roots names
//
// The manifests are what a delta release copies from (docs/delta.md): the
// files of a release whose root is kept, and that are still as the
// fetcher wrote them, are copied into the next one. Each prune removes
// the roots of releases no longer on disk and the parts that no kept root
// names; an archive release has none.
type Workspace struct {
	dir      string
	releases string
	// mu serialises publishing, so that a superseded Apply still cleaning
	// up never races a newer one for current or the prune, and guards the
	// fields below.
	mu sync.Mutex
	// imageModules is set by UseImageModules; appDir is the app's image
	// directory once known.
	imageModules bool
	appDir       string
	// pinned is the hex of the release that prune keeps whatever its age:
	// the last one that went live, which a rollback goes back to.
	pinned string
	// leftovers are what Open could not remove.
	leftovers []error
	// manifests are the delta releases' roots and parts; assembling
	// counts the Applies assembling each root, whose parts a prune keeps.
	manifests  manifestStore
	assembling map[string]int

	// removing holds one channel per removal started by discard, closed
	// when it ends; rmu guards it.
	rmu      sync.Mutex
	removing []chan struct{}
}

// Open prepares dir as a workspace and returns it. It writes .aether/boot.cjs
// only if it is absent: `node --watch` watches that file's inode, so it is
// never replaced. Leftovers of a crashed Apply are removed, and those it
// cannot remove skipped (Leftovers).
func Open(dir string) (*Workspace, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	w := &Workspace{dir: dir, releases: filepath.Join(dir, sidecar.ReleasesDir), manifests: newManifestStore(dir), assembling: map[string]int{}}
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
	for _, d := range []string{filepath.Join(dir, manifestsDir), w.manifests.roots, w.manifests.parts} {
		if err := mkdirMode(d, dirMode); err != nil {
			return nil, err
		}
	}
	watched := w.watched()
	for _, d := range []string{dir, w.releases, filepath.Join(dir, sidecar.StateDir), w.manifests.roots, w.manifests.parts} {
		w.leftovers = append(w.leftovers, removeTemps(d, watched)...)
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

// removeTemps removes every leftover in dir and returns why it could not
// remove some: the app shares the volume, may run as root, and may leave
// there what the fetcher cannot remove; and the links of watched inodes
// stay (watched.go). Nothing depends on their absence.
func removeTemps(dir string, watched watchedInodes) []error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if !e.IsDir() {
			if err := os.Remove(p); err != nil {
				errs = append(errs, err)
			}
		} else if !watched.removeTree(p) {
			errs = append(errs, fmt.Errorf("%s: not all removed (the links of files the app watches stay until its container restarts)", p))
		}
	}
	return errs
}

// Leftovers returns why Open could not remove some leftovers of an earlier
// run, for the fetcher to log: they are skipped, and tried again by the
// next Open.
func (w *Workspace) Leftovers() []error { return w.leftovers }

// discard removes dir, a staging directory or a pruned release already
// renamed to a temporary name, in the background: removing 100k entries
// takes seconds, and a newer digest must not wait for it.
func (w *Workspace) discard(dir string) {
	done := make(chan struct{})
	w.rmu.Lock()
	w.removing = slices.DeleteFunc(w.removing, isClosed)
	w.removing = append(w.removing, done)
	w.rmu.Unlock()
	go func() {
		defer close(done)
		// What is left is removed by the next Open.
		w.watched().removeTree(dir)
	}()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Wait returns once the removals that Apply left running in the
// background have ended, or with ctx's error when it ends first. Apply
// waits before each download, so that the volume holds what it was sized
// for; the fetcher waits when it stops.
func (w *Workspace) Wait(ctx context.Context) error {
	w.rmu.Lock()
	pending := slices.Clone(w.removing)
	w.rmu.Unlock()
	for _, c := range pending {
		select {
		case <-c:
		case <-ctx.Done():
			return context.Cause(ctx)
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

// UseImageModules makes releases that carry no node_modules resolve the
// image's own, as the app ran them: it links releases/node_modules, which
// Node's module resolution finds from every release directory, to
// <appDir>/node_modules. The link resolves in the app's container; the
// fetcher never follows it. appDir is the app's directory in its image, or
// sidecar.AppDirWorking when only boot.cjs can tell (it records the
// directory in .aether/loaded, from where the link is made before the next
// publish, and boot.cjs waits for it if a release starts first).
func (w *Workspace) UseImageModules(appDir string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.imageModules = true
	if filepath.IsAbs(appDir) {
		w.appDir = filepath.Clean(appDir)
	}
	return w.linkImageModules()
}

// LearnAppDir takes the app's directory from boot.cjs's record
// (Loaded.AppDir), if it is not known yet.
func (w *Workspace) LearnAppDir(dir string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.imageModules && w.appDir == "" && filepath.IsAbs(dir) && filepath.Clean(dir) == dir {
		w.appDir = dir
		_ = w.linkImageModules() // retried before each publish
	}
}

// linkImageModules makes the link of UseImageModules, with mu held.
func (w *Workspace) linkImageModules() error {
	if !w.imageModules {
		return nil
	}
	if w.appDir == "" {
		l, err := w.Loaded()
		if err != nil || !filepath.IsAbs(l.AppDir) || filepath.Clean(l.AppDir) != l.AppDir {
			return nil
		}
		w.appDir = l.AppDir
	}
	link := filepath.Join(w.dir, sidecar.ImageModules)
	target := filepath.Join(w.appDir, "node_modules")
	if t, err := os.Readlink(link); err == nil && t == target {
		return nil
	}
	tmp, err := tempSymlink(target, w.releases, tempPrefix+"node_modules-")
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Pin keeps release d ("sha256:<hex>") on disk until another is pinned,
// however many newer ones are published; "" pins none.
func (w *Workspace) Pin(d string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pinned = strings.TrimPrefix(d, digest.Prefix)
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
