package fetcher

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// maxEventError keeps the error in an Event's note short; the log line,
// and the record on the Event, have the full text.
const maxEventError = 512

// succeeded reports a published release; the health gate (gate.go) takes
// it from there, to live or to a rollback.
func (f *Fetcher) succeeded(o outcome) {
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
		Source:     o.res.Source,
		Reused:     int64(o.res.Reused),
	}, fmt.Sprintf("Published %s on pod %s in %s%s", o.res.Digest, f.cfg.PodName, latency.Round(time.Millisecond), commit(d)))
}

// failed reports a failure of obs's target and returns the updated record.
func (f *Fetcher) failed(obs observation, err error, att attempts) attempts {
	d := obs.desired
	reason := release.ReasonOf(err)
	now := time.Now()
	att = att.failed(d.key(), release.IsFinal(err), f.cfg.MaxRetries, func(n int) time.Duration {
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
	f.report(obs, r, fmt.Sprintf("Refresh to %s failed on pod %s (attempt %d, %s): %s: %s%s",
		d.Digest, f.cfg.PodName, att.failures, next, reason, shorten(msg), commit(d)))
	return att
}

// shorten keeps an error short enough for an Event's note.
func shorten(msg string) string {
	if len(msg) <= maxEventError {
		return msg
	}
	return strings.ToValidUTF8(msg[:maxEventError], "") + "…"
}

// report writes r as a REFRESH_* line and as an Event on the Deployment,
// both with the build annotations of obs.
func (f *Fetcher) report(obs observation, r refresh.Record, note string) {
	r.Commit, r.BuildTimestamp = obs.desired.CommitSHA, obs.desired.BuildTimestamp
	_ = refresh.Write(f.out, r)
	f.events.report(r, *obs.ref, note)
}

// commit labels a message with the build annotations' commit.
func commit(d Desired) string {
	if d.CommitSHA == "" {
		return ""
	}
	return fmt.Sprintf(" (%s %s)", annotations.CommitSHA, d.CommitSHA)
}
