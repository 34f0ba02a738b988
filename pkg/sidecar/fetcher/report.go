package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// Event reasons on the Deployment, shown by kubectl describe.
// RefreshLive follows RefreshSucceeded once the running app has loaded
// the release: `kubectl devhot push` waits for it, so that it returns only
// when the new code answers.
const (
	EventRefreshSucceeded = "RefreshSucceeded"
	EventRefreshFailed    = "RefreshFailed"
	EventRefreshLive      = "RefreshLive"
)

// eventComponent is the source of the fetcher's Events.
const eventComponent = "aether-fetcher"

// maxEventError keeps an Event's message well under the API's 1 KiB
// guidance; the log line has the full text.
const maxEventError = 512

func eventSource(pod string) corev1.EventSource {
	return corev1.EventSource{Component: eventComponent, Host: pod}
}

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

	kv := []string{
		"digest", o.res.Digest,
		"latency_ms", ms(latency),
		"bytes", strconv.FormatInt(o.res.Bytes, 10),
		"files", strconv.Itoa(o.res.Files),
		"downloaded", strconv.FormatInt(o.res.Downloaded, 10),
	}
	marker(f.out, "REFRESH_OK", append(kv, build(d)...)...)
	f.recorder.AnnotatedEventf(o.job.obs.ref, eventAnnotations(d), corev1.EventTypeNormal, EventRefreshSucceeded,
		"Published %s on pod %s in %s%s", o.res.Digest, f.cfg.PodName, latency.Round(time.Millisecond), commit(d))

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
			marker(f.out, "REFRESH_LIVE", "digest", o.res.Digest, "live_ms", ms(live))
			f.recorder.AnnotatedEventf(o.job.obs.ref, eventAnnotations(d), corev1.EventTypeNormal, EventRefreshLive,
				"Loaded %s on pod %s in %s%s", o.res.Digest, f.cfg.PodName, live.Round(time.Millisecond), commit(d))
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
	kv := []string{"reason", string(reason), "digest", d.Digest, "error", msg, "attempt", strconv.Itoa(att.failures)}
	next := "no retry until the digest or artifact URL changes"
	if !att.gaveUp {
		wait := att.retryAt.Sub(now)
		kv = append(kv, "retry_in_ms", ms(wait))
		next = "retry in " + wait.Round(time.Millisecond).String()
	}
	marker(f.out, "REFRESH_FAIL", append(kv, build(d)...)...)
	if len(msg) > maxEventError {
		msg = strings.ToValidUTF8(msg[:maxEventError], "") + "…"
	}
	f.recorder.AnnotatedEventf(obs.ref, eventAnnotations(d), corev1.EventTypeWarning, EventRefreshFailed,
		"Refresh to %s failed on pod %s (attempt %d, %s): %s: %s%s", d.Digest, f.cfg.PodName, att.failures, next, reason, msg, commit(d))
	return att
}

func ms(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// build returns the optional key=values that tie a line to its source.
func build(d Desired) []string {
	var kv []string
	if d.CommitSHA != "" {
		kv = append(kv, "commit", d.CommitSHA)
	}
	if d.BuildTimestamp != "" {
		kv = append(kv, "build_timestamp", d.BuildTimestamp)
	}
	return kv
}

func commit(d Desired) string {
	if d.CommitSHA == "" {
		return ""
	}
	return fmt.Sprintf(" (%s %s)", annotations.CommitSHA, d.CommitSHA)
}

// eventAnnotations carries the build annotations onto the Event itself, so
// that tools can match Events to commits without parsing the message.
func eventAnnotations(d Desired) map[string]string {
	a := map[string]string{}
	if d.CommitSHA != "" {
		a[annotations.CommitSHA] = d.CommitSHA
	}
	if d.BuildTimestamp != "" {
		a[annotations.BuildTimestamp] = d.BuildTimestamp
	}
	return a
}
