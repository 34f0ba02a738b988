package mutate

import "fmt"

// Reason is the machine-readable cause of a denial; its Denial carries the
// sentence for humans.
type Reason string

// Reasons a Deployment is denied.
const (
	ReasonBadAnnotation    Reason = "BadAnnotation"
	ReasonNoEntrypoint     Reason = "NoEntrypoint"
	ReasonReservedName     Reason = "ReservedName"
	ReasonUnknownContainer Reason = "UnknownContainer"
	ReasonMalformed        Reason = "Malformed"
	// ReasonAmbiguousContainer: no single container can be told to be the
	// Node.js app.
	ReasonAmbiguousContainer Reason = "AmbiguousContainer"
	// ReasonNotNode: the app container does not run Node.js.
	ReasonNotNode Reason = "NotNode"
	// ReasonImageLookup: the image had to be read to know how the app
	// starts, and could not be.
	ReasonImageLookup Reason = "ImageLookup"
	// ReasonNodeVersion: the image's Node.js has no --watch.
	ReasonNodeVersion Reason = "NodeVersion"
)

// Denial is the error Deployment returns for an object that cannot be made
// dev-hot. Its message names the offending field and the fix, because
// kubectl shows it to the user as is.
type Denial struct {
	Reason Reason
	// Field is the path of the offending field, as in `kubectl explain`.
	Field string
	// Problem says what is wrong.
	Problem string
	// Fix says what to do.
	Fix string
}

func (d *Denial) Error() string {
	return fmt.Sprintf("aether-devhot: %s: %s; %s", d.Field, d.Problem, d.Fix)
}

func deny(r Reason, field, problem, fix string, args ...any) *Denial {
	return &Denial{Reason: r, Field: field, Problem: problem, Fix: fmt.Sprintf(fix, args...)}
}
