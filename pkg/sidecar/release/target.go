package release

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

// digestPrefix is the only algorithm the digest annotation may name.
const digestPrefix = "sha256:"

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
// aether.dev/artifact-url. Errors have ReasonBadAnnotation and name the
// annotation to fix, because only the user can fix them.
//
// The hex must be lowercase: it names a directory and is compared with
// Workspace.Current, so accepting two spellings of one digest would make the
// fetcher re-publish forever. Credentials in the URL are refused because
// anyone who can read the Deployment can read its annotations.
func ParseTarget(digest, artifactURL string) (Target, error) {
	hex, err := parseDigest(digest)
	if err != nil {
		return Target{}, newError(ReasonBadAnnotation, fmt.Errorf("annotation %s: %w", annotations.Digest, err))
	}
	u, err := parseArtifactURL(artifactURL)
	if err != nil {
		return Target{}, newError(ReasonBadAnnotation, fmt.Errorf("annotation %s: %w", annotations.ArtifactURL, err))
	}
	return Target{Digest: digest, Hex: hex, URL: u}, nil
}

func parseDigest(digest string) (string, error) {
	if digest == "" {
		return "", errors.New("not set")
	}
	hex, ok := strings.CutPrefix(digest, digestPrefix)
	if !ok {
		return "", fmt.Errorf("%q must start with %q", digest, digestPrefix)
	}
	if !isHex64(hex) {
		return "", fmt.Errorf("%q must be %q followed by 64 lowercase hex digits", digest, digestPrefix)
	}
	return hex, nil
}

// isHex64 reports whether s is 64 lowercase hex digits, the form of a
// release directory name.
func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
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
