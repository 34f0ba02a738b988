package release_test

import (
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

func TestReasonOf(t *testing.T) {
	if got := release.ReasonOf(nil); got != "" {
		t.Errorf("ReasonOf(nil) = %q", got)
	}
	wrapped := &release.Error{Reason: refresh.ReasonChecksum, Err: errString("x")}
	if got := release.ReasonOf(wrapErr{wrapped}); got != refresh.ReasonChecksum {
		t.Errorf("ReasonOf(wrapped) = %q", got)
	}
	if got := release.ReasonOf(errString("foreign")); got != refresh.ReasonExtract {
		t.Errorf("ReasonOf(foreign) = %q", got)
	}
	if got := wrapped.Error(); got != "checksum: x" {
		t.Errorf("Error() = %q", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

type wrapErr struct{ err error }

func (w wrapErr) Error() string { return "wrapped: " + w.err.Error() }
func (w wrapErr) Unwrap() error { return w.err }
