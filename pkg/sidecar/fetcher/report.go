package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// maxEventError keeps the error in an Event's note short; the log line,
// and the record on the Event, have the full text.
const maxEventError = 512

// succeeded reports a published release and starts waiting for the app to
// load it. It returns the function that stops that wait.
func (f *Fetcher) succeeded(ctx context.Context, o outcome) context.CancelFunc {
	d := o.job.obs.desired
	latency := o.at.Sub(o.job.obs.seen)
	f.live.Store(&o.res.Digest)
	f.metrics.Refreshes.Inc()
	f.metrics.Latency.Observe(latency.Seconds())
	f.metrics.ConsecutiveFailures.Set(0)
	f.metrics.LastSuccess.Set(float64(o.at.UnixNano()) / 1e9)

	f.report(o.job.obs, refresh.Record{
		Marker:     refresh.MarkerOK,
		Digest:     o.res.Digest,
		Latency:    latency,
		Bytes:      o.res.Bytes,
		Files:      int64(o.res.Files),
		Downloaded: o.res.Downloaded,
	}, fmt.Sprintf("Published %s on pod %s in %s%s", o.res.Digest, f.cfg.PodName, latency.Round(time.Millisecond), commit(d)))

	// An app that has never loaded a release is not running yet: it loads
	// current when it starts, and a touch now would only restart it twice.
	// Wait for it without touching, so that RefreshLive still follows.
	retouch := f.retouch
	if _, err := f.ws.Loaded(); errors.Is(err, fs.ErrNotExist) {
		retouch = release.NeverRetouch
	}
	lctx, cancel := context.WithTimeout(ctx, liveWait)
	f.bg.Go(func() {
		defer cancel()
		_, err := f.ws.WaitLoaded(lctx, o.res.Digest, retouch)
		switch {
		case err == nil:
			live := time.Since(o.job.obs.seen)
			f.report(o.job.obs, refresh.Record{Marker: refresh.MarkerLive, Digest: o.res.Digest, Live: live},
				fmt.Sprintf("Loaded %s on pod %s in %s%s", o.res.Digest, f.cfg.PodName, live.Round(time.Millisecond), commit(d)))
		case errors.Is(err, context.DeadlineExceeded):
			f.log.Warn("the app has not loaded the release", "digest", o.res.Digest, "waited", liveWait)
		case lctx.Err() == nil:
			f.log.Warn("cannot confirm that the app loaded the release", "digest", o.res.Digest, "error", err)
		}
	})
	return cancel
}

// failed reports a failure of obs's target and returns the updated record.
func (f *Fetcher) failed(obs observation, err error, att attempts) attempts {
	d := obs.desired
	reason := release.ReasonOf(err)
	now := time.Now()
	att = att.failed(d.key(), reason, f.cfg.MaxRetries, func(n int) time.Duration {
		return f.backoff.Delay(n, f.rand)
	}, now)
	f.metrics.Failures.WithLabelValues(string(reason)).Inc()
	f.metrics.ConsecutiveFailures.Inc()

	msg := err.Error()
	if e, ok := errors.AsType[*release.Error](err); ok {
		msg = e.Err.Error()
	}
	r := refresh.Record{Marker: refresh.MarkerFail, Reason: reason, Digest: d.Digest, Error: msg, Attempt: int64(att.failures), GaveUp: att.gaveUp}
	next := "no retry until the digest or artifact URL changes"
	if !att.gaveUp {
		r.RetryIn = att.retryAt.Sub(now)
		next = "retry in " + r.RetryIn.Round(time.Millisecond).String()
	}
	short := msg
	if len(short) > maxEventError {
		short = strings.ToValidUTF8(short[:maxEventError], "") + "…"
	}
	f.report(obs, r, fmt.Sprintf("Refresh to %s failed on pod %s (attempt %d, %s): %s: %s%s",
		d.Digest, f.cfg.PodName, att.failures, next, reason, short, commit(d)))
	return att
}

// report writes r as a REFRESH_* line and as an Event on the Deployment,
// both with the build annotations of obs.
func (f *Fetcher) report(obs observation, r refresh.Record, note string) {
	r.Commit, r.BuildTimestamp = obs.desired.CommitSHA, obs.desired.BuildTimestamp
	_ = refresh.Write(f.out, r)
	f.events.report(r, *obs.ref, note)
}

func commit(d Desired) string {
	if d.CommitSHA == "" {
		return ""
	}
	return fmt.Sprintf(" (%s %s)", annotations.CommitSHA, d.CommitSHA)
}
