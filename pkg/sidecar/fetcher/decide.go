package fetcher

import (
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// Desired is what the Deployment's annotations ask to be live.
type Desired struct {
	// Digest is aether.dev/digest, "" when unset.
	Digest string
	// ArtifactURL is aether.dev/artifact-url.
	ArtifactURL string
	// CommitSHA and BuildTimestamp only label log lines and Events.
	CommitSHA      string
	BuildTimestamp string
	// HealthTimeoutSec is aether.dev/health-timeout-sec, as set.
	HealthTimeoutSec string
}

// DesiredOf reads the annotations of a Deployment.
func DesiredOf(a map[string]string) Desired {
	return Desired{
		Digest:         a[annotations.Digest],
		ArtifactURL:    a[annotations.ArtifactURL],
		CommitSHA:      a[annotations.CommitSHA],
		BuildTimestamp: a[annotations.BuildTimestamp],

		HealthTimeoutSec: a[annotations.HealthTimeoutSec],
	}
}

// key names one target. A new digest or a new URL starts afresh, so fixing
// a mistyped URL is retried even after the fetcher gave up on the old one.
func (d Desired) key() string {
	return d.Digest + " " + d.ArtifactURL
}

// attempts is the failure record of the one target being worked on.
type attempts struct {
	key      string
	failures int
	retryAt  time.Time
	gaveUp   bool
}

// failed records one more failure of key and when to try it again.
// A final failure (release.Error.Final: a bad annotation, a volume too
// small for the release) is never retried: only a new annotation can fix
// it.
func (a attempts) failed(key string, final bool, maxRetries int, delay func(failures int) time.Duration, now time.Time) attempts {
	if a.key != key {
		a = attempts{key: key}
	}
	a.failures++
	a.gaveUp = final || (maxRetries > 0 && a.failures >= maxRetries)
	a.retryAt = time.Time{}
	if !a.gaveUp {
		a.retryAt = now.Add(delay(a.failures))
	}
	return a
}

// decide's answers that the loop tells apart.
const (
	// whyLive: the digest is already live.
	whyLive = "digest is live"
	// whyRejected: the app failed on the digest and it was rolled back.
	whyRejected = "the app failed on this digest and it was rolled back; waiting for a new one"
)

// action is what the loop does next.
type action int

const (
	actNone  action = iota // nothing to do; why says why
	actApply               // download and publish target
	actFail                // report err as a failure without trying
	actWait                // retry after wait
)

// decision is the pure core's answer, so that tests can drive every branch
// without a workspace, a server or a clock.
type decision struct {
	action action
	target annotations.Target
	err    error
	wait   time.Duration
	why    string
}

// decide compares what is desired with what is live, with the digest the
// health gate rolled back (rejected), and with the failure record of the
// target.
func decide(d Desired, current, rejected string, a attempts, now time.Time) decision {
	switch {
	case d.Digest == "":
		return decision{why: "no " + annotations.Digest + " annotation yet"}
	case d.Digest == current:
		return decision{why: whyLive}
	case d.Digest == rejected:
		return decision{why: whyRejected}
	}
	if a.key == d.key() {
		if a.gaveUp {
			return decision{why: "gave up on this digest until it or the artifact URL changes"}
		}
		if now.Before(a.retryAt) {
			return decision{action: actWait, wait: a.retryAt.Sub(now), why: "backing off"}
		}
	}
	t, err := annotations.ParseTarget(d.Digest, d.ArtifactURL)
	if err != nil {
		err = &release.Error{Reason: refresh.ReasonBadAnnotation, Err: err, Final: true}
		return decision{action: actFail, err: err, why: "bad annotation"}
	}
	return decision{action: actApply, target: t, why: "applying"}
}
