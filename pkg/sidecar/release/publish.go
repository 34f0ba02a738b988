package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	// A failed prune is retried by the next publish, which looks at every
	// old release again.
	w.prune(hex)
	return nil
}

// flip points current at releases/<hex> atomically: a new relative symlink
// is renamed over the old one, so readers see either release, never none.
func (w *Workspace) flip(hex string) error {
	tmp := filepath.Join(w.dir, tempPrefix+sidecar.CurrentLink)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Symlink(sidecar.ReleasesDir+"/"+hex, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(w.dir, sidecar.CurrentLink))
}

// prune removes all but the newest sidecar.KeepReleases releases, never
// live nor the pinned one, which counts as one of them. Each
// is renamed away first, so a crash mid-removal never leaves a partial
// directory under a digest's name that republish would trust.
func (w *Workspace) prune(live string) {
	entries, err := os.ReadDir(w.releases)
	if err != nil {
		return
	}
	type release struct {
		hex string
		mod time.Time
	}
	var old []release
	keep := sidecar.KeepReleases - 1 // besides live
	for _, e := range entries {
		if !e.IsDir() || !digest.IsHex(e.Name()) || e.Name() == live {
			continue
		}
		if e.Name() == w.pinned {
			keep--
			continue
		}
		if fi, err := e.Info(); err == nil {
			old = append(old, release{e.Name(), fi.ModTime()})
		}
	}
	if len(old) <= keep {
		return
	}
	slices.SortFunc(old, func(a, b release) int { return b.mod.Compare(a.mod) })
	for _, r := range old[keep:] {
		tmp := filepath.Join(w.releases, tempPrefix+"prune-"+r.hex)
		if os.Rename(filepath.Join(w.releases, r.hex), tmp) == nil {
			os.RemoveAll(tmp)
		}
	}
}
