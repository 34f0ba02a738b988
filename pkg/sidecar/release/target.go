package release

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// Target is the release that a Deployment's annotations ask for.
type Target struct {
	// Digest is the annotation value, "sha256:<64 lowercase hex>".
	Digest string
	// Hex is Digest without its prefix; it names the release directory.
	Hex string
	// URL is the http(s) location of the .tar.gz whose sha256 is Digest.
	URL *url.URL
}

// ParseTarget validates the values of aether.dev/digest and
// aether.dev/artifact-url. Errors have refresh.ReasonBadAnnotation and name the
// annotation to fix, because only the user can fix them.
//
// The hex must be lowercase: it names a directory and is compared with
// Workspace.Current, so accepting two spellings of one digest would make the
// fetcher re-publish forever. Credentials in the URL are refused because
// anyone who can read the Deployment can read its annotations.
func ParseTarget(digestValue, artifactURL string) (Target, error) {
	hex, err := parseDigest(digestValue)
	if err != nil {
		return Target{}, newError(refresh.ReasonBadAnnotation, fmt.Errorf("annotation %s: %w", annotations.Digest, err))
	}
	u, err := parseArtifactURL(artifactURL)
	if err != nil {
		return Target{}, newError(refresh.ReasonBadAnnotation, fmt.Errorf("annotation %s: %w", annotations.ArtifactURL, err))
	}
	return Target{Digest: digestValue, Hex: hex, URL: u}, nil
}

func parseDigest(d string) (string, error) {
	if d == "" {
		return "", errors.New("not set")
	}
	hex, ok := strings.CutPrefix(d, digest.Prefix)
	if !ok {
		return "", fmt.Errorf("%q must start with %q", d, digest.Prefix)
	}
	if !digest.IsHex(hex) {
		return "", fmt.Errorf("%q must be %q followed by 64 lowercase hex digits", d, digest.Prefix)
	}
	return hex, nil
}

func parseArtifactURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("not set")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme must be http or https", raw)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("%q: must be an absolute URL with a host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: must not carry credentials; annotations are readable by anyone who can read the Deployment", u.Redacted())
	}
	return u, nil
}
