package release

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// Dependencies (docs/dependencies.md). A release that carries a
// package.json and a lockfile, and no node_modules, resolves its packages
// through a node_modules link to sidecar.DepsDir/<key>/node_modules, where
// key is the sha256 of the lockfile. The fetcher makes the link, because
// only it may write into a release; boot.cjs, in the app's container,
// fills the entry before the release's code starts: a link to the image's
// own node_modules when the lockfile is the image's, else an install by
// the image's package manager. The same lockfile is never installed twice
// in a pod.

// Lockfile returns the lockfile of the release in dir, the first of
// sidecar.Lockfiles present as a regular file beside a package.json; ok
// is false when there is none, or when the release carries its own
// node_modules, which then win as they always have.
func Lockfile(dir string) (name string, ok bool) {
	if !isRegular(filepath.Join(dir, "package.json")) {
		return "", false
	}
	if _, err := os.Lstat(filepath.Join(dir, "node_modules")); !errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	for _, l := range sidecar.Lockfiles {
		if isRegular(filepath.Join(dir, l)) {
			return l, true
		}
	}
	return "", false
}

// DepsKey is the cache key of a lockfile's content: its sha256, in hex.
func DepsKey(lockfile io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, lockfile); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DepsLinkTarget is the target of the node_modules link of a release whose
// lockfile has key: relative, so that it resolves in both containers
// wherever each mounts the workspace.
func DepsLinkTarget(key string) string {
	return path.Join("..", "..", sidecar.DepsDir, key, "node_modules")
}

// linkDeps makes the node_modules link of the release staged in dir, if
// it carries a lockfile (Lockfile), and returns the lockfile and its key;
// "" for none.
func linkDeps(dir string) (lockfile, key string, err error) {
	name, ok := Lockfile(dir)
	if !ok {
		return "", "", nil
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	if key, err = DepsKey(f); err != nil {
		return "", "", err
	}
	return name, key, os.Symlink(DepsLinkTarget(key), filepath.Join(dir, "node_modules"))
}

func isRegular(name string) bool {
	fi, err := os.Lstat(name)
	return err == nil && fi.Mode().IsRegular()
}
