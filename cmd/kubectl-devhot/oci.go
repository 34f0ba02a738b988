package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/oci"
	"github.com/aether-dev/aether-devhot/pkg/pack"
)

// ociTagPrefix starts the tag push gives a release when --to names none:
// one tag per release, so that registries that collect untagged manifests
// keep it, and registries with immutable tags accept it.
const ociTagPrefix = "devhot-"

// parseOCIDestination reads --to: oci://<registry>/<repo>, optionally with
// a tag. A digest is refused: push computes it.
func parseOCIDestination(to string) (repo name.Repository, tag string, err error) {
	rest, ok := strings.CutPrefix(to, annotations.OCIScheme)
	if !ok {
		return name.Repository{}, "", fmt.Errorf("--to %q: must be %s<registry>/<repo>[:tag], e.g. oci://ghcr.io/org/app", to, annotations.OCIScheme)
	}
	if strings.Contains(rest, "@") {
		return name.Repository{}, "", fmt.Errorf("--to %q: leave out the digest (push computes it) and any credentials (push uses your docker config: docker login)", to)
	}
	reg, _, hasRepo := strings.Cut(rest, "/")
	if !hasRepo || !strings.ContainsAny(reg, ".:") && reg != "localhost" {
		return name.Repository{}, "", fmt.Errorf("--to %q: must start with the registry's host (a name with a dot or a port, or localhost), then the repository", to)
	}
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		// A colon after the last slash is a tag's; before it, a port's.
		rest, tag = rest[:i], rest[i+1:]
	}
	repo, err = name.NewRepository(rest, name.StrictValidation)
	if err != nil {
		return name.Repository{}, "", fmt.Errorf("--to %q: %v", to, err)
	}
	if tag != "" {
		if _, err := name.NewTag(repo.Name()+":"+tag, name.StrictValidation); err != nil {
			return name.Repository{}, "", fmt.Errorf("--to %q: %v", to, err)
		}
	}
	return repo, tag, nil
}

// pushOCI writes a as an OCI artifact (package oci) to --to with the
// user's registry credentials (docker config and credential helpers, as
// crane and oras find them) and returns its artifact URL, by digest.
func (p *pusher) pushOCI(ctx context.Context, a *pack.Artifact) (string, error) {
	repo, tag, err := parseOCIDestination(p.o.to)
	if err != nil {
		return "", err
	}
	if tag == "" {
		tag = ociTagPrefix + a.Hex()[:12]
	}
	img, err := oci.Image(a.Data)
	if err != nil {
		return "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	if err := remote.Write(repo.Tag(tag), img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("kubectl-devhot")); err != nil {
		return "", fmt.Errorf("push to %s: %w\n(log in with docker login %s, or check --to)", p.o.to, err, repo.RegistryStr())
	}
	url := annotations.OCIScheme + repo.Name() + "@" + d.String()
	// The one rule the webhook and the fetcher follow.
	if _, err := annotations.ParseArtifactURL(url); err != nil {
		return "", err
	}
	fmt.Fprintf(p.out, "pushed %s:%s (%d bytes)\n", repo.Name(), tag, len(a.Data))
	return url, nil
}

// ociReleaseURL is the artifact URL of release digest in the repository
// of current, an oci:// artifact URL: the manifest that push tagged
// devhot-<digest> there, by its digest. The manifest's digest cannot be
// derived from the release's without its bytes, so the registry is asked.
func ociReleaseURL(ctx context.Context, current, digest string) (string, error) {
	loc, err := annotations.ParseArtifactURL(current)
	if err != nil {
		return "", err
	}
	hex, err := annotations.ParseDigest(digest)
	if err != nil {
		return "", err
	}
	tag := loc.OCI.Context().Tag(ociTagPrefix + hex[:12])
	desc, err := remote.Head(tag, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("kubectl-devhot"))
	if err != nil {
		return "", fmt.Errorf("the URL of %s is not known: %s: %w (pushed with a tag of its own? pass --artifact-url oci://…@sha256:<its manifest digest>)", digest, tag, err)
	}
	return annotations.OCIScheme + loc.OCI.Context().Name() + "@" + desc.Digest.String(), nil
}
