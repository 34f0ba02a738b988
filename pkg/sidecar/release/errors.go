package release

import (
	"context"
	"errors"
)

// Reason is the closed enum of REFRESH_FAIL reasons (DESIGN.md "Fetcher"). It
// is a metric label, so it never carries free text.
type Reason string

// The failure reasons. Every error from ParseTarget and Apply has exactly one.
const (
	// ReasonBadAnnotation: aether.dev/digest or aether.dev/artifact-url is
	// missing or malformed; retrying cannot help until the user fixes it.
	ReasonBadAnnotation Reason = "bad_annotation"
	// ReasonDownload: the request failed, timed out, was redirected to another
	// host, or was cancelled because a newer digest arrived.
	ReasonDownload Reason = "download"
	// ReasonHTTPStatus: the server answered with a status other than 200.
	ReasonHTTPStatus Reason = "http_status"
	// ReasonSizeLimit: the download, the extracted total, the entry count or
	// the compression ratio went over Limits.
	ReasonSizeLimit Reason = "size_limit"
	// ReasonChecksum: the sha256 of the downloaded bytes is not the digest.
	ReasonChecksum Reason = "checksum"
	// ReasonUnsafePath: an entry is absolute, climbs out with "..", or is a
	// symlink or hardlink, any of which could write outside the release.
	ReasonUnsafePath Reason = "unsafe_path"
	// ReasonUnsupportedEntry: a device, fifo, sparse file or other entry that
	// is neither a regular file nor a directory.
	ReasonUnsupportedEntry Reason = "unsupported_entry"
	// ReasonExtract: the bytes are not a valid tar.gz, or writing them failed.
	ReasonExtract Reason = "extract"
	// ReasonPublish: renaming the release, flipping current or touching
	// boot.cjs failed.
	ReasonPublish Reason = "publish"
)

// Reasons returns every Reason, in the order above, for the fetcher's
// metrics and for the manager's fleet metrics, which parse them back from
// REFRESH_FAIL lines; one list keeps the two from drifting apart.
func Reasons() []Reason {
	return []Reason{
		ReasonBadAnnotation,
		ReasonDownload,
		ReasonHTTPStatus,
		ReasonSizeLimit,
		ReasonChecksum,
		ReasonUnsafePath,
		ReasonUnsupportedEntry,
		ReasonExtract,
		ReasonPublish,
	}
}

// Error carries the Reason of a failure next to its cause, so the fetcher can
// count failures by reason and still log the full text.
type Error struct {
	Reason Reason
	Err    error
}

// Error returns "<reason>: <cause>".
func (e *Error) Error() string { return string(e.Reason) + ": " + e.Err.Error() }

// Unwrap gives errors.Is access to the cause, for example context.Canceled
// when a newer digest superseded the download.
func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason carried by err, "" for nil. Errors without one
// come from outside this package; they are reported as ReasonDownload when
// they are context errors and ReasonExtract otherwise, so that the metric
// label always stays inside the closed enum.
func ReasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ReasonDownload
	}
	return ReasonExtract
}

func newError(r Reason, err error) *Error { return &Error{Reason: r, Err: err} }
