package store

import (
	"context"
	"errors"
	"net/http"
)

// Access decides who may read a blob and who may upload one. The store
// itself knows no identities: on a cluster package kubeaccess answers with
// a TokenReview and a SubjectAccessReview for readers and with the
// Deployment's annotations for uploads (docs/store.md says why).
type Access interface {
	// Ready reports whether Access can decide yet; until then the store
	// answers 503 and its /readyz fails.
	Ready() bool
	// AuthorizeRead answers whether the holder of the bearer token may
	// read the blobs of ref's Deployment: nil for yes, a *Denied for no,
	// any other error when it cannot tell.
	AuthorizeRead(ctx context.Context, token string, ref BlobRef) error
	// AuthorizeUpload answers whether ref's Deployment asks for ref.Hex,
	// so that its bytes may be uploaded: nil for yes, a *Denied for no,
	// any other error when it cannot tell.
	AuthorizeUpload(ctx context.Context, ref BlobRef) error
}

// Denied is an Access's no, with the HTTP status to answer and a reason
// that tells the client what to do.
type Denied struct {
	// Status is http.StatusUnauthorized (the credential was not accepted)
	// or http.StatusForbidden (it was, but does not allow this).
	Status int
	// Reason is shown to the client.
	Reason string
}

// Error returns the reason.
func (d *Denied) Error() string { return d.Reason }

// Unauthorized is a Denied with status 401.
func Unauthorized(reason string) *Denied {
	return &Denied{Status: http.StatusUnauthorized, Reason: reason}
}

// Forbidden is a Denied with status 403.
func Forbidden(reason string) *Denied { return &Denied{Status: http.StatusForbidden, Reason: reason} }

// asDenied returns err's *Denied, if it is one.
func asDenied(err error) (*Denied, bool) {
	var d *Denied
	ok := errors.As(err, &d)
	return d, ok
}
