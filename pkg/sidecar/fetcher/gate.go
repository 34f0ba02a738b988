package fetcher

import (
	"fmt"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// The health gate (DESIGN.md "Health gate"). After a release is published
// the fetcher watches the app come up on it, through boot.cjs's record in
// .aether/loaded and, where the app container has one, the app's own
// readiness (or startup) probe run on the pod's loopback. A release is live
// once its entry has loaded and the probe passes. A release that crashes
// before that, or is not live within the health timeout, is rolled back;
// a release that went live and then goes down is restarted with a backoff.
//
// gate is the pure core: one release's state, advanced by next from one
// look at the app, so that tests drive every row of the table without a
// process, a workspace or a clock. watchApp (app.go) takes the looks and
// the loop acts on the verdicts.

// verdict is what the gate concluded from one look.
type verdict int

const (
	vWait       verdict = iota // nothing new
	vTouch                     // no process has chosen the release yet: touch boot.cjs again, Node dropped the last touch
	vLive                      // the release has loaded and, with a probe, answers
	vCrashed                   // the process exited before the release went live
	vUnhealthy                 // the release was not live within the health timeout
	vDown                      // the release went live, or is trusted, and its process exited or its probe kept failing
	vUp                        // a release that was down is live again
	vStopped                   // a live or trusted release's process exited with 0 and no error, as a server shutting down does
	vInstalling                // the process installs the release's dependencies; the health timeout waits for it
)

func (v verdict) String() string {
	return [...]string{"wait", "touch", "live", "crashed", "unhealthy", "down", "up", "stopped", "installing"}[v]
}

// look is one reading of the app, taken by watchApp.
type look struct {
	now time.Time
	// current is the digest the current link points to, "" for none.
	current string
	// loaded is boot.cjs's record; hasLoaded is false before the first.
	loaded    release.Loaded
	hasLoaded bool
	// probed is set when the probe ran for this look; probeErr is its
	// result.
	probed   bool
	probeErr error
}

// gate is the health gate's state for one release.
type gate struct {
	// digest is the release watched, "" for the image's own code.
	digest string
	// trusted is set for a release that is not on trial: one the pod
	// already ran when the fetcher started, or one rolled back to. Its
	// failures are vDown, never a rollback.
	trusted bool
	// probe is set when the app has a probe that the fetcher runs;
	// threshold is how many failures in a row make a live release down.
	probe     bool
	threshold int
	// timeout runs from a process choosing the release, or from the end of
	// its install, to live; installTimeout caps the install.
	timeout        time.Duration
	installTimeout time.Duration
	// retouch is how long to wait for a process to choose the release
	// before touching boot.cjs again; 0 never touches (the app has not
	// started, and will load current when it does).
	retouch   time.Duration
	lastTouch time.Time

	pid      int       // the latest process that chose the release; 0 before one did
	chosen   time.Time // when the gate saw that process first
	ready    bool      // that process has loaded the entry
	exited   bool      // that process has exited, and the gate said so
	live     bool      // the release went live
	down     bool      // said down, and not up since
	timedOut bool      // said unhealthy, or down for the timeout
	failures int       // probe failures in a row
	probeErr string    // the last probe failure

	installing   bool      // that process installs the release's dependencies
	installSince time.Time // when the gate saw it start
	// preinstalled is what the previous process did for the release's
	// dependencies before it was published; nil if nothing.
	preinstalled *release.Deps
}

// step is next's answer: the verdict, and for a failure its error,
// whether the process exited (which a restart can fix) or still runs, and
// whether it had loaded the entry.
type step struct {
	verdict verdict
	why     string
	exited  bool
	loaded  bool
	// reason is a failure's when it is not the verdict's own: the
	// dependency step's (refresh.ReasonDepsInstall, ReasonNoPackageManager).
	reason refresh.Reason
	// deps is the record's, for vInstalling and vLive: how the release got
	// its dependencies; nil for a release without a lockfile.
	deps *release.Deps
}

// next advances g by one look. A look at a workspace whose current link
// no longer points to g's release says nothing: that release was replaced
// or rolled back, and the loop is about to stop g.
func (g gate) next(l look) (gate, step) {
	if l.current != g.digest {
		return g, step{}
	}
	r := l.loaded
	mine := l.hasLoaded && r.Digest == g.digest
	if mine && r.PID != g.pid {
		// The first process on the release, or a restart of it (the
		// fetcher's, or the kubelet's after the container died).
		g.pid, g.chosen, g.ready, g.exited, g.failures, g.timedOut, g.installing = r.PID, l.now, false, false, 0, false, false
	}
	if g.pid == 0 {
		if g.retouch > 0 && l.now.Sub(g.lastTouch) >= g.retouch {
			g.lastTouch = l.now
			return g, step{verdict: vTouch}
		}
		return g, step{}
	}
	mine = mine && r.PID == g.pid
	if mine && r.Exit != nil && !g.exited {
		g.exited = true
		why := r.Exit.String()
		if g.live || g.trusted {
			if r.Exit.Code == 0 && r.Exit.Error == nil {
				// A clean shutdown: the app's own SIGTERM handler, when
				// the kubelet stops the pod. Not a crash to restart.
				return g, step{verdict: vStopped, why: why}
			}
			g.down = true
			return g, step{verdict: vDown, why: why, exited: true, loaded: r.Ready}
		}
		reason := depsFailure(r.Deps)
		if reason != "" && r.Exit.Error != nil {
			// boot.cjs's message says it all; "Error: " would only add noise.
			why = r.Exit.Error.Message
		}
		return g, step{verdict: vCrashed, why: why, exited: true, loaded: r.Ready, reason: reason}
	}
	if g.exited {
		// node --watch waits for a touch; only a new process changes that.
		return g, step{}
	}
	if mine && !r.Ready && r.Deps != nil && r.Deps.State == release.DepsInstalling {
		switch {
		case !g.installing:
			g.installing, g.installSince = true, l.now
			return g, step{verdict: vInstalling, deps: r.Deps}
		case !g.timedOut && l.now.Sub(g.installSince) >= g.installTimeout:
			g.timedOut = true
			why := fmt.Sprintf("the install of %s's dependencies had not finished after %s", r.Deps.Lockfile, g.installTimeout)
			if g.trusted || g.live {
				g.down = true
				return g, step{verdict: vDown, why: why}
			}
			return g, step{verdict: vUnhealthy, why: why, reason: refresh.ReasonDepsInstall}
		}
		return g, step{}
	}
	if g.installing {
		// The install has finished: the release now gets its health
		// timeout, as if it had just been chosen.
		g.installing, g.chosen = false, l.now
	}
	if mine && r.Ready {
		g.ready = true
	}
	if l.probed {
		if l.probeErr == nil {
			g.failures = 0
		} else {
			g.failures++
			g.probeErr = l.probeErr.Error()
		}
	}
	healthy := g.ready && (!g.probe || (l.probed && l.probeErr == nil))
	switch {
	case healthy && !g.live:
		g.live, g.down = true, false
		deps := g.preinstalled
		if deps == nil && mine {
			deps = r.Deps
		}
		return g, step{verdict: vLive, deps: deps}
	case healthy && g.down:
		g.down = false
		return g, step{verdict: vUp}
	case g.live && !g.down && g.probe && g.failures >= g.threshold:
		g.down = true
		return g, step{verdict: vDown, why: fmt.Sprintf("failed %d checks in a row: %s", g.failures, g.probeErr)}
	case !g.live && !g.timedOut && l.now.Sub(g.chosen) >= g.timeout:
		g.timedOut = true
		why := fmt.Sprintf("the entry had not finished loading after %s", g.timeout)
		if g.ready {
			why = fmt.Sprintf("loaded, but its probe had not passed after %s: %s", g.timeout, g.probeErr)
		}
		if g.trusted {
			g.down = true
			return g, step{verdict: vDown, why: why}
		}
		return g, step{verdict: vUnhealthy, why: why}
	}
	return g, step{}
}

// rollbackTarget is what to put back after the app failed on release
// failed: the last release that went live (good, when hasGood), if it is
// still on disk; else the image's own code, where the pod runs it until
// the first push (imageCode). ok is false when there is nothing to go
// back to: the first release of a pod whose initContainer was replaced.
// to is "" for the image's code.
func rollbackTarget(failed, good string, hasGood, imageCode bool, onDisk func(digest string) bool) (to string, ok bool) {
	if hasGood && good != "" && good != failed && onDisk(good) {
		return good, true
	}
	if imageCode {
		return "", true
	}
	return "", false
}

// depsFailure is the failure reason a record of a release's dependencies
// gives, "" when they did not fail. The app writes the record: a reason
// outside the two of the dependency step is an install failure still.
func depsFailure(d *release.Deps) refresh.Reason {
	if d == nil || d.State != release.DepsFailed {
		return ""
	}
	if d.Reason == refresh.ReasonNoPackageManager {
		return d.Reason
	}
	return refresh.ReasonDepsInstall
}
