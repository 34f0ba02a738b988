package fleet

import (
	"time"

	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// Event is the bare word that starts a fetcher marker line.
type Event string

// The fetcher's markers (DESIGN.md "Fetcher", pkg/sidecar/fetcher/report.go).
const (
	// EventRefreshOK: a release was published; counted and timed.
	EventRefreshOK Event = "REFRESH_OK"
	// EventRefreshFail: a refresh failed; counted by reason.
	EventRefreshFail Event = "REFRESH_FAIL"
	// EventRefreshLive: the app has loaded the release. Parsed for
	// completeness; no fleet metric counts it.
	EventRefreshLive Event = "REFRESH_LIVE"
)

// ReasonUnknown stands for a REFRESH_FAIL reason that is missing or outside
// the closed enum of release.Reason (a newer fetcher, a damaged line), so
// that the failure is still counted while the label stays low-cardinality.
const ReasonUnknown release.Reason = "unknown"

// Record is one fetcher marker line. Fields that the line lacks, or that do
// not parse, are left zero and named in Malformed.
type Record struct {
	// Time is the kubelet's timestamp prefix (PodLogOptions.Timestamps);
	// zero when the line had none.
	Time  time.Time
	Event Event
	// Digest is the artifact the line is about, "sha256:<hex>".
	Digest string

	// Latency is REFRESH_OK's latency_ms: digest seen -> published.
	Latency time.Duration
	// Bytes, Files and Downloaded are REFRESH_OK's sizes.
	Bytes, Files, Downloaded int64

	// Reason is REFRESH_FAIL's reason; ReasonUnknown when missing or
	// outside the enum.
	Reason release.Reason
	// Error is REFRESH_FAIL's unquoted error text.
	Error string
	// Attempt is REFRESH_FAIL's failure count for this digest.
	Attempt int64
	// RetryIn is REFRESH_FAIL's retry_in_ms.
	RetryIn time.Duration
	// GaveUp is true when a REFRESH_FAIL has no retry_in_ms: the fetcher
	// waits for the digest or artifact URL to change.
	GaveUp bool

	// Live is REFRESH_LIVE's live_ms: digest seen -> loaded by the app.
	Live time.Duration

	// Commit and BuildTimestamp are the optional build annotations.
	Commit, BuildTimestamp string

	// Malformed names, in line order, each field that was required but
	// missing, or present but unparseable (including a reason outside the
	// enum). Nil for a well-formed line.
	Malformed []string
}
