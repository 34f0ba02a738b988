package release

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// publish makes releases/<hex> live: the staging directory, unless empty,
// is renamed to it first. It flips current, then touches boot.cjs so that
// node --watch restarts exactly once (NODE-WATCH.md: a symlink flip alone
// restarts nothing), and prunes old releases.
func (w *Workspace) publish(ctx context.Context, staging, hex string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ctx.Err() != nil {
		return newError(refresh.ReasonDownload, fmt.Errorf("not published: %w", context.Cause(ctx)))
	}
	dst := filepath.Join(w.releases, hex)
	if staging != "" {
		// The rename fails if a concurrent Apply of the same digest won;
		// its release is as good as ours.
		if err := os.Rename(staging, dst); err != nil && !isDir(dst) {
			return newError(refresh.ReasonPublish, err)
		}
	} else if !isDir(dst) {
		return newError(refresh.ReasonPublish, fmt.Errorf("release %s was pruned while it was being published", hex))
	}
	// The mtime orders releases for the prune.
	now := time.Now()
	if err := os.Chtimes(dst, now, now); err != nil {
		return newError(refresh.ReasonPublish, err)
	}
	if err := w.linkImageModules(); err != nil {
		return newError(refresh.ReasonPublish, fmt.Errorf("link %s: %w", sidecar.ImageModules, err))
	}
	prev := w.currentHex()
	if err := w.flip(hex); err != nil {
		return newError(refresh.ReasonPublish, fmt.Errorf("flip %s: %w", sidecar.CurrentLink, err))
	}
	if err := w.Touch(); err != nil {
		// Without the restart the app keeps running prev, so current must
		// say so too, or the fetcher would believe hex is live.
		if prev != "" {
			err = errors.Join(err, w.flip(prev))
		}
		return newError(refresh.ReasonPublish, fmt.Errorf("touch %s: %w", sidecar.BootFile, err))
	}
	// A failed prune is retried by the next Apply, which looks at every
	// old release again.
	w.prune(hex, sidecar.KeepReleases)
	return nil
}

// flip points current at releases/<hex> atomically: a new relative symlink
// is renamed over the old one, so readers see either release, never none.
func (w *Workspace) flip(hex string) error {
	tmp, err := tempSymlink(sidecar.ReleasesDir+"/"+hex, w.dir, tempPrefix+sidecar.CurrentLink+"-")
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, sidecar.CurrentLink)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// tempSymlink makes a symlink to target in dir under a new name that
// starts with prefix, for a rename into place. The name is random because
// a fixed one could be a leftover that the fetcher cannot remove: the app
// shares the volume and may run as root.
func tempSymlink(target, dir, prefix string) (string, error) {
	for {
		name := filepath.Join(dir, tempName(prefix))
		if err := os.Symlink(target, name); !errors.Is(err, fs.ErrExist) {
			return name, err
		}
	}
}

// tempName is prefix and a random part, which no leftover has taken.
func tempName(prefix string) string {
	return prefix + strconv.FormatUint(rand.Uint64(), 36)
}

// prune removes all but the newest keep releases, never live nor the
// pinned one, which count among them, and returns how many it removed.
// Each is renamed away first, so a crash mid-removal never leaves a
// partial directory under a digest's name that republish would trust, and
// removed in the background (Wait), so that a big one holds up nothing.
// The manifests of the releases it removes go too. Callers hold w.mu.
func (w *Workspace) prune(live string, keep int) int {
	defer w.manifests.prune(w.releases, w.assembling)
	entries, err := os.ReadDir(w.releases)
	if err != nil {
		return 0
	}
	type release struct {
		hex string
		mod time.Time
	}
	var old []release
	for _, e := range entries {
		if !e.IsDir() || !digest.IsHex(e.Name()) {
			continue
		}
		if e.Name() == live || e.Name() == w.pinned {
			keep--
			continue
		}
		if fi, err := e.Info(); err == nil {
			old = append(old, release{e.Name(), fi.ModTime()})
		}
	}
	keep = max(keep, 0)
	if len(old) <= keep {
		return 0
	}
	slices.SortFunc(old, func(a, b release) int { return b.mod.Compare(a.mod) })
	removed := 0
	for _, r := range old[keep:] {
		tmp := filepath.Join(w.releases, tempName(tempPrefix+"prune-"))
		if os.Rename(filepath.Join(w.releases, r.hex), tmp) == nil {
			w.discard(tmp)
			removed++
		}
	}
	return removed
}
