package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/backoff"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// How often watchApp looks: often while a release is on its way to live,
// since live_ms is measured here; seldom once it is, when a look only
// has to notice an exit.
const (
	lookLoading = 5 * time.Millisecond
	lookLive    = 100 * time.Millisecond
	// probeLoading spaces the probes of a release that is not live yet;
	// a live one is probed every period of the app's probe.
	probeLoading = 50 * time.Millisecond
)

// Restarts of an app that went down on its own: a backoff from 1 s to
// 30 s, reset once the app has stayed up for stableFor.
var restartBackoff = backoff.Backoff{Base: time.Second, Max: 30 * time.Second, Equal: true}

const stableFor = time.Minute

// health is one verdict of a watchApp, for the loop.
type health struct {
	gen    int
	digest string
	step
	at time.Time
}

// appState is the loop's view of the app: the gate watching it, the last
// release that went live, the digest rolled back, and the restarts. Only
// the loop goroutine uses it.
type appState struct {
	gen  int
	stop context.CancelFunc
	// trial is the push the running gate judges; nil when it watches a
	// trusted release.
	trial *observation
	// since is when the running gate started: the rollback, for "answers
	// again after".
	since time.Time
	// live is set while the watched release is up.
	live bool

	// good is the last release that went live ("" for the image's own
	// code), hasGood whether there is one.
	good    string
	hasGood bool
	// rejected is the digest the gate rolled back (release.Workspace
	// keeps it across restarts of the fetcher).
	rejected string

	restarts  int
	upSince   time.Time
	restart   *time.Timer
	restartOf string // the digest the restart timer is for
}

// newApp reads the state a restarted fetcher inherits from the workspace:
// what runs is trusted, and the rejected digest stays rejected.
func (f *Fetcher) newApp() *appState {
	a := &appState{stop: func() {}, rejected: f.ws.Rejected(), restart: time.NewTimer(time.Hour)}
	a.restart.Stop()
	if current := f.ws.Current(); current != "" || f.cfg.AppDir != "" {
		a.good, a.hasGood = current, true
		f.ws.Pin(current)
	}
	return a
}

// startGate stops the running gate and starts g; trial is the push that g
// judges, nil for a trusted release.
func (f *Fetcher) startGate(ctx context.Context, a *appState, g gate, trial *observation) {
	a.stop()
	a.restart.Stop()
	a.gen++
	a.trial, a.since, a.live = trial, time.Now(), false
	wctx, cancel := context.WithCancel(ctx)
	a.stop = cancel
	gen := a.gen
	f.bg.Go(func() { f.watchApp(wctx, gen, g) })
}

// newGate returns the gate for digest, with the timeout that the push
// asked for. retouch is 0 when the app has never started: it loads
// current when it does, and a touch would only restart it twice.
func (f *Fetcher) newGate(digest string, trusted bool, d Desired) gate {
	timeout, err := annotations.ParseHealthTimeout(d.HealthTimeoutSec)
	if err != nil {
		f.log.Warn("using the default health timeout", "error", err)
		timeout = annotations.DefaultHealthTimeoutSec * time.Second
	}
	g := gate{digest: digest, trusted: trusted, timeout: timeout, installTimeout: release.DefaultInstallTimeout, retouch: f.retouch, lastTouch: time.Now()}
	if f.checker != nil {
		g.probe, g.threshold = true, f.checker.Probe().FailureThreshold
	}
	if _, err := f.ws.Loaded(); errors.Is(err, fs.ErrNotExist) {
		g.retouch = 0
	}
	return g
}

// watchApp looks at the app until ctx ends, and sends the loop every
// verdict but vWait; it touches boot.cjs itself on vTouch. It ends after a
// release failed, since the loop then rolls it back.
func (f *Fetcher) watchApp(ctx context.Context, gen int, g gate) {
	var lastProbe time.Time
	for {
		l := look{now: time.Now(), current: f.ws.Current()}
		rec, err := f.ws.Loaded()
		switch {
		case err == nil:
			l.loaded, l.hasLoaded = rec, true
			f.ws.LearnAppDir(rec.AppDir)
		case !errors.Is(err, fs.ErrNotExist):
			// boot.cjs renames a whole record into place; an unreadable one
			// is someone else's doing, and a later look may read it.
			f.log.Warn("cannot read the app's record", "error", err)
		}
		if g.probe && g.ready && !g.exited {
			every := probeLoading
			if g.live && !g.down {
				every = f.checker.Probe().Period()
			}
			if l.now.Sub(lastProbe) >= every {
				l.probed, l.probeErr, lastProbe = true, f.checker.Check(ctx), l.now
				l.now = time.Now()
			}
		}
		var s step
		g, s = g.next(l)
		switch s.verdict {
		case vWait:
		case vTouch:
			if err := f.ws.Touch(); err != nil {
				f.log.Warn("cannot restart the app", "error", err)
			}
		default:
			select {
			case f.healthc <- health{gen: gen, digest: g.digest, step: s, at: l.now}:
			case <-ctx.Done():
				return
			}
			if s.verdict == vCrashed || s.verdict == vUnhealthy {
				return
			}
		}
		pause := lookLoading
		if g.live && !g.down {
			pause = lookLive
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// onHealth acts on a verdict of the running gate.
func (f *Fetcher) onHealth(ctx context.Context, a *appState, h health, last *observation) {
	if h.gen != a.gen {
		return // from a gate stopped since
	}
	switch h.verdict {
	case vLive, vUp:
		f.up(a, h)
	case vInstalling:
		f.installing(a, h)
	case vCrashed, vUnhealthy:
		f.rollback(ctx, a, h)
	case vDown:
		f.down(a, h, last)
	case vStopped:
		a.live = false
		f.log.Info("the app exited with code 0; it is not restarted", "digest", orImage(h.digest))
	}
}

// up reports a release that went live, or came back.
func (f *Fetcher) up(a *appState, h health) {
	a.live, a.upSince = true, h.at
	if a.trial == nil {
		if h.verdict == vUp || a.restarts > 0 {
			f.log.Info("the app is up again", "digest", orImage(h.digest), "restarts", a.restarts)
		} else {
			f.log.Info("the app runs", "digest", orImage(h.digest), "after", h.at.Sub(a.since).Round(time.Millisecond))
		}
		return
	}
	o := a.trial
	a.trial = nil
	a.good, a.hasGood = h.digest, true
	f.ws.Pin(h.digest)
	live := h.at.Sub(o.seen)
	r := refresh.Record{Marker: refresh.MarkerLive, Digest: h.digest, Live: live}
	deps := ""
	if d := h.deps; d != nil && slices.Contains([]release.DepsState{release.DepsImage, release.DepsCached, release.DepsInstalled}, d.State) {
		r.Deps = refresh.Deps(d.State)
		deps = fmt.Sprintf(", the dependencies of %s: %s", d.Lockfile, d.State)
		if d.State == release.DepsInstalled {
			r.Install = time.Duration(max(d.Ms, 0)) * time.Millisecond
			deps = fmt.Sprintf(", the dependencies of %s installed by %s in %s", d.Lockfile, d.Manager, r.Install)
		}
	}
	f.report(*o, r, fmt.Sprintf("Loaded %s on pod %s in %s%s%s", h.digest, f.cfg.PodName, live.Round(time.Millisecond), deps, commit(o.desired)))
}

// installing reports that the app's package manager installs the
// dependencies of the release on trial, so that push can say why it waits.
func (f *Fetcher) installing(a *appState, h health) {
	if a.trial == nil || h.deps == nil {
		f.log.Info("the app installs its dependencies", "digest", orImage(h.digest))
		return
	}
	d := h.deps
	f.report(*a.trial, refresh.Record{Marker: refresh.MarkerInstall, Digest: h.digest, Lockfile: d.Lockfile},
		fmt.Sprintf("Installing the dependencies of %s for %s on pod %s with %s%s", d.Lockfile, h.digest, f.cfg.PodName, d.Manager, commit(a.trial.desired)))
}

// rollback puts back the last good release after the app failed on the
// one on trial, reports the failure with what serves now, and rejects the
// digest until the Deployment asks for another. Only a gate with a trial
// fails a release; a trusted one reports vDown.
func (f *Fetcher) rollback(ctx context.Context, a *appState, h health) {
	o := a.trial
	reason, what := refresh.ReasonAppCrashed, "crashed while it loaded"
	switch {
	case h.reason != "":
		reason, what = h.reason, "could not get its dependencies"
	case h.verdict == vUnhealthy:
		reason, what = refresh.ReasonUnhealthy, "was not healthy in time"
	case h.loaded:
		what = "crashed before its probe passed"
	}
	r := refresh.Record{Marker: refresh.MarkerFail, Reason: reason, Digest: h.digest, Error: h.why, Attempt: 1, GaveUp: true}
	to, ok := rollbackTarget(h.digest, a.good, a.hasGood, f.cfg.AppDir != "", f.ws.Has)
	next := "nothing to roll back to: the pod has no earlier release and no image code of its own; push a fix"
	if ok {
		if err := f.ws.Rollback(to); err != nil {
			next, ok = "rolling back failed: "+err.Error(), false
		} else {
			r.RolledBackTo = orImageCode(to)
			next = "rolled back to " + orImage(to)
			f.metrics.Rollbacks.Inc()
		}
	}
	if err := f.ws.Reject(h.digest); err != nil {
		f.log.Warn("cannot record the rejected digest; a restarted fetcher will try it again", "error", err)
	}
	a.rejected = h.digest
	current := f.ws.Current()
	f.live.Store(&current)
	f.metrics.Failures.WithLabelValues(string(reason)).Inc()
	f.metrics.ConsecutiveFailures.Inc()
	f.report(*o, r, fmt.Sprintf("Release %s %s on pod %s: %s; %s%s", h.digest, what, f.cfg.PodName, shorten(h.why), next, commit(o.desired)))
	if ok {
		f.startGate(ctx, a, f.newGate(to, true, o.desired), nil)
	}
}

// down reports a release that went down after it went live (or a trusted
// one that failed), and restarts an app that exited, with a backoff.
func (f *Fetcher) down(a *appState, h health, last *observation) {
	a.live = false
	r := refresh.Record{Marker: refresh.MarkerFail, Reason: refresh.ReasonAppDown, Digest: h.digest, Error: h.why, GaveUp: true}
	next := "the app still runs; it is not restarted"
	if h.exited {
		if !a.upSince.IsZero() && h.at.Sub(a.upSince) >= stableFor {
			a.restarts = 0
		}
		a.restarts++
		delay := restartBackoff.Delay(a.restarts, f.rand)
		a.restart.Reset(delay)
		a.restartOf = h.digest
		r.GaveUp, r.RetryIn = false, delay
		next = "restarting it in " + delay.Round(time.Millisecond).String()
	}
	r.Attempt = int64(max(a.restarts, 1))
	f.metrics.Failures.WithLabelValues(string(refresh.ReasonAppDown)).Inc()
	if h.digest == "" || last == nil {
		// The image's own code is not a release: say it in the log only.
		f.log.Warn("the app is down", "digest", orImage(h.digest), "error", h.why, "next", next)
		return
	}
	note := fmt.Sprintf("The app on pod %s went down on %s: %s; %s", f.cfg.PodName, h.digest, shorten(h.why), next)
	if last.desired.Digest == h.digest {
		note += commit(last.desired)
	} else {
		// The build annotations are another digest's.
		last = &observation{desired: Desired{Digest: h.digest}, ref: last.ref, seen: last.seen}
	}
	f.report(*last, r, note)
}

// restartApp is the restart timer's work: touch boot.cjs, unless another
// release took over in the meantime.
func (f *Fetcher) restartApp(a *appState) {
	if f.ws.Current() != a.restartOf {
		return
	}
	f.log.Info("restarting the app", "digest", orImage(a.restartOf), "restart", a.restarts)
	if err := f.ws.Touch(); err != nil {
		f.log.Warn("cannot restart the app", "error", err)
	}
}

// orImage names a release, or the image's own code for "".
func orImage(digest string) string {
	if digest == "" {
		return "the image's own code"
	}
	return digest
}

// orImageCode is rolled_back_to's value for a release.
func orImageCode(digest string) string {
	if digest == "" {
		return refresh.ImageCode
	}
	return digest
}
