package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// Installing the next release's dependencies while the app serves
// (docs/dependencies.md). A release whose lockfile the pod has not
// installed would otherwise install as its process starts, after node
// --watch has stopped the app. So, when the app's process takes requests
// (Loaded.Installer), Apply writes an InstallRequest for the staged
// release and waits for boot.cjs's InstallResult before it publishes.

// InstallRequest asks the running app's boot.cjs for the dependencies of
// a staged release (sidecar.InstallRequestFile).
type InstallRequest struct {
	// ID tells this request's answer from an earlier one's.
	ID string `json:"id"`
	// Key is the lockfile's DepsKey, the cache entry to fill.
	Key      string `json:"key"`
	Lockfile string `json:"lockfile"`
	// Dir is the staged release, relative to the workspace.
	Dir string `json:"dir"`
}

// InstallResult is boot.cjs's answer (sidecar.InstallResultFile): Deps in
// state DepsInstalling while the package manager runs, then DepsInstalled,
// DepsImage, DepsCached or DepsFailed.
type InstallResult struct {
	ID   string `json:"id"`
	Deps Deps   `json:"deps"`
}

// WithInstalling has Apply call f once the running app has started to
// install the staged release's dependencies, so that the fetcher can say
// why the release waits.
func WithInstalling(f func(Deps)) ApplyOption {
	return func(o *applyOptions) { o.installing = f }
}

// How preinstall watches for the answer: pickup bounds the wait for the
// app to take the request (it looks every 100 ms, if its event loop is
// free), after which the release's own process installs as it starts.
const (
	installLook   = 20 * time.Millisecond
	installPickup = 3 * time.Second
)

// preinstall has the running app get the dependencies of the release
// staged in dir, whose lockfile has key, before it is published. It
// returns what the app did, nil when it did nothing: the entry is there
// already, or no running process takes requests, or none took this one
// in time. A failure is a final *Error with the dependency step's reason.
func (w *Workspace) preinstall(ctx context.Context, dir, lockfile, key string, limit time.Duration, c applyOptions) (*Deps, error) {
	if _, err := os.Lstat(filepath.Join(w.dir, sidecar.DepsDir, key)); err == nil {
		return nil, nil
	}
	if l, err := w.Loaded(); err != nil || !l.Installer || l.Exit != nil {
		return nil, nil
	}
	rel, err := filepath.Rel(w.dir, dir)
	if err != nil {
		return nil, nil
	}
	req := InstallRequest{ID: strconv.FormatUint(rand.Uint64(), 36), Key: key, Lockfile: lockfile, Dir: filepath.ToSlash(rel)}
	if err := w.writeRequest(req); err != nil {
		return nil, newError(refresh.ReasonPublish, fmt.Errorf("ask the app to install %s's dependencies: %w", lockfile, err))
	}
	defer os.Remove(filepath.Join(w.dir, sidecar.InstallRequestFile))
	start := time.Now()
	taken, said := false, false
	tick := time.NewTicker(installLook)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, newError(refresh.ReasonDownload, fmt.Errorf("not published while its dependencies installed: %w", context.Cause(ctx)))
		case <-tick.C:
		}
		var r InstallResult
		err := w.readState(sidecar.InstallResultFile, &r)
		mine := err == nil && r.ID == req.ID
		switch {
		case mine && r.Deps.State == DepsInstalling:
			taken = true
			if !said && c.installing != nil {
				said = true
				d := r.Deps
				d.Lockfile, d.Key = lockfile, key
				c.installing(d)
			}
		case mine && r.Deps.State == DepsFailed:
			why := r.Deps.Message
			if r.Deps.Output != "" {
				why += ":\n" + r.Deps.Output
			}
			reason := refresh.ReasonDepsInstall
			if r.Deps.Reason == refresh.ReasonNoPackageManager {
				reason = r.Deps.Reason
			}
			return nil, &Error{Reason: reason, Final: true, Err: errors.New(why)}
		case mine && (r.Deps.State == DepsInstalled || r.Deps.State == DepsImage || r.Deps.State == DepsCached):
			d := r.Deps
			d.Lockfile, d.Key = lockfile, key
			return &d, nil
		case mine:
			return nil, &Error{Reason: refresh.ReasonDepsInstall, Final: true, Err: fmt.Errorf("the app answered the install request with state %q", r.Deps.State)}
		}
		if l, err := w.Loaded(); err == nil && l.Exit != nil {
			// The process that was to install is gone; the release's own
			// will install as it starts.
			return nil, nil
		}
		if !taken && time.Since(start) > installPickup {
			return nil, nil
		}
		if time.Since(start) > limit {
			return nil, &Error{Reason: refresh.ReasonDepsInstall, Final: true, Err: fmt.Errorf("the install of %s's dependencies had not finished after %s", lockfile, limit)}
		}
	}
}

// writeRequest puts req in place atomically.
func (w *Workspace) writeRequest(req InstallRequest) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	name := filepath.Join(w.dir, sidecar.InstallRequestFile)
	tmp := filepath.Join(filepath.Dir(name), tempName(tempPrefix+"install-"))
	if err := os.WriteFile(tmp, b, fileMode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, fileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
