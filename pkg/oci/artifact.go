// Package oci owns the shape of a release stored as an OCI artifact: what
// `kubectl devhot push --to oci://…` writes and what the fetcher accepts.
//
// A release is an OCI image manifest with one layer, the release's .tar.gz
// exactly as package pack made it, so the layer's digest is the release's
// digest (aether.dev/digest) and the fetcher verifies one sha256, as it does
// for a download from the store. The media types are Flux's source-artifact
// types (`flux push artifact`, RFC-0003): the content is the same kind of
// thing, a tarball of a source tree, registries that filter media types
// (GitLab's) already allow them, and `flux pull artifact` unpacks a release
// for inspection. A Flux artifact with exactly one layer is accepted too.
package oci

import (
	"bytes"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/aether-dev/aether-devhot/pkg/digest"
)

// The media types of a release artifact.
const (
	// ManifestMediaType is the OCI image manifest.
	ManifestMediaType = types.OCIManifestSchema1
	// ConfigMediaType is Flux's source-artifact config.
	ConfigMediaType types.MediaType = "application/vnd.cncf.flux.config.v1+json"
	// ContentMediaType is Flux's source-artifact content: a tar+gzip.
	ContentMediaType types.MediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"
)

// MaxManifestBytes bounds the manifest the fetcher reads. One layer's
// manifest is under 1 KiB; the OCI distribution spec asks registries to
// take manifests of at least 4 MiB, which is the most anyone should send.
const MaxManifestBytes = 4 << 20

// Image is the artifact of the release tgz. Its only layer is tgz byte for
// byte, so its digest is the release's. Unlike Flux's, it carries no
// annotations (a creation time, a commit): the manifest is a function of
// the release alone, so pushing an unchanged tree names the same manifest
// and changes nothing.
func Image(tgz []byte) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tgz)), nil
	}, tarball.WithMediaType(ContentMediaType))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, ManifestMediaType)
	img = mutate.ConfigMediaType(img, ConfigMediaType)
	return mutate.AppendLayers(img, layer)
}

// ManifestError says why a manifest is not the release it was asked for.
type ManifestError struct{ Problem string }

func (e *ManifestError) Error() string { return "OCI manifest: " + e.Problem }

// CheckManifest parses raw, the manifest an artifact URL names, and
// returns its release layer: it must be an OCI image manifest with exactly
// one layer, of ContentMediaType, whose digest is want ("sha256:<hex>",
// aether.dev/digest). The config is not read: nothing in it is needed.
func CheckManifest(raw []byte, want string) (v1.Descriptor, error) {
	fail := func(format string, args ...any) (v1.Descriptor, error) {
		return v1.Descriptor{}, &ManifestError{Problem: fmt.Sprintf(format, args...)}
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return fail("not a manifest: %v", err)
	}
	if m.MediaType != ManifestMediaType {
		return fail("media type %q, want %q", m.MediaType, ManifestMediaType)
	}
	if m.Config.MediaType != ConfigMediaType {
		return fail("config media type %q, want %q (push with kubectl devhot push --to oci://…)", m.Config.MediaType, ConfigMediaType)
	}
	if len(m.Layers) != 1 {
		return fail("%d layers, want exactly 1, the release's .tar.gz", len(m.Layers))
	}
	l := m.Layers[0]
	if l.MediaType != ContentMediaType {
		return fail("layer media type %q, want %q", l.MediaType, ContentMediaType)
	}
	if l.Digest.Algorithm != "sha256" || !digest.IsHex(l.Digest.Hex) || l.Size < 0 {
		return fail("layer descriptor %s (%d bytes) is not a sha256 blob", l.Digest, l.Size)
	}
	if got := l.Digest.String(); got != want {
		return fail("the layer is %s, but aether.dev/digest is %s: the annotations name two different releases", got, want)
	}
	return l, nil
}
