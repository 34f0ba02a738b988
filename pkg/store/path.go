package store

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/aether-dev/aether-devhot/pkg/digest"
)

// BlobRef names a blob the way the fetchers and `kubectl devhot push`
// address it. Blobs are kept per namespace: the same bytes pushed for two
// namespaces are two blobs, each counted against its own quota. The
// Deployment is the one the blob was pushed for; its RBAC decides who may
// read the blob, and its annotations who may upload it.
type BlobRef struct {
	// Namespace is the blob's scope, a DNS label, also its directory name.
	Namespace string
	// Deployment is a DNS subdomain; it is never used as a file name.
	Deployment string
	// Hex is the blob's sha256 in 64 lowercase hex digits.
	Hex string
}

// blobPathPrefix starts every blob path; see BlobRef.Path.
const blobPathPrefix = "/v1/namespaces/"

// LegacyBlobPathPrefix is where blobs lived before they were kept per
// namespace. The store answers 410 Gone there, with what to do.
const LegacyBlobPathPrefix = "/v1/blobs/sha256/"

// Path returns /v1/namespaces/<ns>/deployments/<name>/blobs/sha256/<hex>.
func (r BlobRef) Path() string {
	return blobPathPrefix + r.Namespace + "/deployments/" + r.Deployment + "/blobs/sha256/" + r.Hex
}

// String names the blob in messages and logs.
func (r BlobRef) String() string {
	return r.Namespace + "/" + r.Deployment + " " + digest.Prefix + r.Hex
}

// Validate says which part of r cannot be used, and why.
func (r BlobRef) Validate() error {
	if errs := validation.IsDNS1123Subdomain(r.Deployment); len(errs) > 0 {
		return errors.Join(validScope(r.Namespace, r.Hex), fmt.Errorf("deployment %q: %s", r.Deployment, strings.Join(errs, "; ")))
	}
	return validScope(r.Namespace, r.Hex)
}

// validScope checks what names a blob on disk: its namespace, a DNS label,
// and its digest.
func validScope(ns, hex string) error {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %s", ns, strings.Join(errs, "; "))
	}
	if !digest.IsHex(hex) {
		return fmt.Errorf("digest %q: want 64 lowercase hex digits", hex)
	}
	return nil
}

// Resource is what a request path names: a blob, or one of the two
// endpoints of a delta release's root (docs/store.md).
type Resource int

// Resources a path can name; see ParsePath.
const (
	// ResourceBlob is BlobRef.Path: the blob itself.
	ResourceBlob Resource = iota
	// ResourceMissing is BlobRef.MissingPath: what a root's release still
	// lacks.
	ResourceMissing
	// ResourceChildren is BlobRef.ChildrenPath: where a root's parts and
	// files are uploaded in bundles.
	ResourceChildren
)

// Suffixes of the delta release's endpoints, after a root's blob path.
const (
	missingSuffix  = "missing"
	childrenSuffix = "children"
)

// MissingPath returns Path()/missing: the parts of root r that the store
// lacks, and the files of its stored parts that it lacks.
func (r BlobRef) MissingPath() string { return r.Path() + "/" + missingSuffix }

// ChildrenPath returns Path()/children, where the parts and files of root
// r are uploaded.
func (r BlobRef) ChildrenPath() string { return r.Path() + "/" + childrenSuffix }

// pathFormat is the accepted forms, for error messages.
const pathFormat = blobPathPrefix + "<namespace>/deployments/<name>/blobs/sha256/<64 lowercase hex digits>[/missing|/children]"

// ParsePath returns the blob an HTTP request path names and which of its
// resources. It accepts exactly the forms of BlobRef.Path, MissingPath and
// ChildrenPath with a valid namespace, Deployment name and digest, so that
// the namespace and the digest can be used as file names as they are.
func ParsePath(path string) (BlobRef, Resource, error) {
	rest, ok := strings.CutPrefix(path, blobPathPrefix)
	parts := strings.Split(rest, "/")
	res := ResourceBlob
	if ok && len(parts) == 7 {
		switch parts[6] {
		case missingSuffix:
			res = ResourceMissing
		case childrenSuffix:
			res = ResourceChildren
		default:
			ok = false
		}
		parts = parts[:6]
	}
	if !ok || len(parts) != 6 || parts[1] != "deployments" || parts[3] != "blobs" || parts[4] != "sha256" {
		return BlobRef{}, 0, fmt.Errorf("path %q: want %s", path, pathFormat)
	}
	r := BlobRef{Namespace: parts[0], Deployment: parts[2], Hex: parts[5]}
	if err := r.Validate(); err != nil {
		return BlobRef{}, 0, fmt.Errorf("path %q: %w", path, err)
	}
	return r, res, nil
}
