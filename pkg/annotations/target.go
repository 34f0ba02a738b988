package annotations

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/digest"
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
// aether.dev/artifact-url: the one rule that admission denies by and that
// the fetcher follows. Errors name the annotation to fix, because only the
// user can fix them.
//
// The hex must be lowercase: it names a directory and is compared with the
// live release, so accepting two spellings of one digest would make the
// fetcher re-publish forever. Credentials in the URL are refused because
// anyone who can read the Deployment can read its annotations.
func ParseTarget(digestValue, artifactURL string) (Target, error) {
	hex, err := ParseDigest(digestValue)
	if err != nil {
		return Target{}, err
	}
	u, err := ParseArtifactURL(artifactURL)
	if err != nil {
		return Target{}, err
	}
	return Target{Digest: digestValue, Hex: hex, URL: u}, nil
}

// Error is a bad annotation value: Problem says what is wrong with the
// value of Key.
type Error struct {
	Key, Problem string
}

func (e *Error) Error() string { return "annotation " + e.Key + ": " + e.Problem }

// ParseDigest validates a value of aether.dev/digest and returns its hex.
func ParseDigest(d string) (string, error) {
	fail := func(format string, args ...any) (string, error) {
		return "", &Error{Key: Digest, Problem: fmt.Sprintf(format, args...)}
	}
	if d == "" {
		return fail("not set")
	}
	hex, ok := strings.CutPrefix(d, digest.Prefix)
	if !ok {
		return fail("%q must start with %q", d, digest.Prefix)
	}
	if !digest.IsHex(hex) {
		return fail("%q must be %q followed by 64 lowercase hex digits", d, digest.Prefix)
	}
	return hex, nil
}

// ParseArtifactURL validates a value of aether.dev/artifact-url.
func ParseArtifactURL(raw string) (*url.URL, error) {
	u, err := parseArtifactURL(raw)
	if err != nil {
		return nil, &Error{Key: ArtifactURL, Problem: err.Error()}
	}
	return u, nil
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

// FetchIntervalSecRange is the range of aether.dev/fetch-interval-sec
// and of the fetcher's AETHER_FETCH_INTERVAL_SEC. Below a second the
// fetcher would spin; above an hour a poll-mode fetcher misses pushes for
// longer than anyone waits, and the watch's resync is only a safety net.
var FetchIntervalSecRange = bounds.Int{Min: 1, Max: 3600, Unit: "seconds"}

// ParseFetchInterval validates a value of aether.dev/fetch-interval-sec.
func ParseFetchInterval(v string) (time.Duration, error) {
	d, err := FetchIntervalSecRange.Seconds(v)
	if err != nil {
		return 0, &Error{Key: FetchIntervalSec, Problem: err.Error()}
	}
	return d, nil
}

// HealthTimeoutSecRange is the range of aether.dev/health-timeout-sec: up
// to the ten minutes the native fetcher's startupProbe gives a first
// release, the longest any pod is held back for its app to come up.
var HealthTimeoutSecRange = bounds.Int{Min: 1, Max: 600, Unit: "seconds"}

// DefaultHealthTimeoutSec is aether.dev/health-timeout-sec when unset.
const DefaultHealthTimeoutSec = 30

// ParseHealthTimeout validates a value of aether.dev/health-timeout-sec;
// "" is the default.
func ParseHealthTimeout(v string) (time.Duration, error) {
	if v == "" {
		return DefaultHealthTimeoutSec * time.Second, nil
	}
	d, err := HealthTimeoutSecRange.Seconds(v)
	if err != nil {
		return 0, &Error{Key: HealthTimeoutSec, Problem: err.Error()}
	}
	return d, nil
}
