package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// DefaultRetouch is how long WaitLoaded waits before touching boot.cjs
// again. Node ignores a touch that arrives while it restarts, and a normal
// restart takes about 350 ms (NODE-WATCH.md), so 2 s means it was lost.
const DefaultRetouch = 2 * time.Second

// loadedPoll is how often WaitLoaded reads .aether/loaded; it bounds the
// error of live_ms and costs one small read.
const loadedPoll = 5 * time.Millisecond

// Loaded is the record boot.cjs writes to .aether/loaded each time it
// starts the app: the fetcher's only proof that the app runs new code.
type Loaded struct {
	// Digest is the release the process resolved current to.
	Digest string `json:"digest"`
	PID    int    `json:"pid"`
	// Time is when the record was written.
	Time time.Time `json:"time"`
	// Ready is false from the moment the process has chosen the release
	// until its entry has loaded (returned from require, or the import
	// settled), true after.
	Ready bool `json:"ready"`
	// AppDir is the app's directory in its image, where boot.cjs found it
	// (AETHER_APP_DIR resolved in the app's container): release zero runs
	// from there, and the image's node_modules are there.
	AppDir string `json:"appDir,omitempty"`
}

// Loaded reads .aether/loaded. The error wraps fs.ErrNotExist if the app has
// not started yet.
func (w *Workspace) Loaded() (Loaded, error) {
	var l Loaded
	b, err := os.ReadFile(filepath.Join(w.dir, sidecar.LoadedFile))
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("%s: %w", sidecar.LoadedFile, err)
	}
	return l, nil
}

// NeverRetouch makes WaitLoaded only wait, for an app that has never
// loaded a release: it is not running yet and will load current when it
// starts, so a touch would only restart it twice.
const NeverRetouch time.Duration = math.MaxInt64

// WaitLoaded waits until .aether/loaded shows digest ready and returns how
// long that took (live_ms). It gives up with ctx's error; that is not a
// REFRESH_FAIL, since the release is already published.
//
// Node drops a change that arrives while it restarts, so WaitLoaded touches
// boot.cjs again if no process has chosen digest within retouch
// (DefaultRetouch when zero or negative; NeverRetouch never touches). Once
// one has, it only waits: touching an app that is still loading would
// restart it, and an app that loads for longer than retouch would then
// never come up.
func (w *Workspace) WaitLoaded(ctx context.Context, digest string, retouch time.Duration) (time.Duration, error) {
	if retouch <= 0 {
		retouch = DefaultRetouch
	}
	start := time.Now()
	lastTouch := start
	tick := time.NewTicker(loadedPoll)
	defer tick.Stop()
	for {
		l, err := w.Loaded()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Touching blindly on an unreadable record would restart the
			// app every retouch, for ever.
			return time.Since(start), err
		}
		if err == nil && l.AppDir != "" {
			w.learnAppDir(l.AppDir)
		}
		chosen := err == nil && l.Digest == digest
		if chosen && l.Ready {
			return time.Since(start), nil
		}
		if !chosen && time.Since(lastTouch) >= retouch {
			if err := w.Touch(); err != nil {
				return time.Since(start), err
			}
			lastTouch = time.Now()
		}
		select {
		case <-ctx.Done():
			return time.Since(start), context.Cause(ctx)
		case <-tick.C:
		}
	}
}
