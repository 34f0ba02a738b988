package release

import (
	"context"
	"errors"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// Error carries the Reason of a failure next to its cause, so the fetcher can
// count failures by reason and still log the full text.
type Error struct {
	Reason refresh.Reason
	Err    error
	// Final is set when trying the same target again cannot succeed until
	// something else changes: a bad annotation, or a volume still full
	// with only the releases it must keep. The fetcher then waits for a
	// new digest or URL instead of retrying.
	Final bool
	// volumeFull marks ENOSPC and EDQUOT, which Apply answers by pruning.
	volumeFull bool
}

// Error returns "<reason>: <cause>".
func (e *Error) Error() string { return string(e.Reason) + ": " + e.Err.Error() }

// Unwrap gives errors.Is access to the cause, for example context.Canceled
// when a newer digest superseded the download.
func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason carried by err, "" for nil. Errors without one
// come from outside this package; they are reported as refresh.ReasonDownload when
// they are context errors and refresh.ReasonExtract otherwise, so that the metric
// label always stays inside the closed enum.
func ReasonOf(err error) refresh.Reason {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return refresh.ReasonDownload
	}
	return refresh.ReasonExtract
}

// IsFinal reports whether err is an *Error with Final set.
func IsFinal(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Final
}

func newError(r refresh.Reason, err error) *Error { return &Error{Reason: r, Err: err} }
