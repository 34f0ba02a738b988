package annotations

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/digest"
)

// Target is the release that a Deployment's annotations ask for.
type Target struct {
	// Digest is the annotation value, "sha256:<64 lowercase hex>".
	Digest string
	// Hex is Digest without its prefix; it names the release directory.
	Hex string
	Location
}

// Location is where a release is fetched from: exactly one field is set.
type Location struct {
	// URL is the http(s) location of the .tar.gz whose sha256 is Digest.
	URL *url.URL
	// OCI is an OCI artifact's manifest, by digest, whose single layer is
	// that .tar.gz (package oci): an artifact URL oci://<registry>/<repo>@sha256:<hex>.
	OCI *name.Digest
}

// String is the location as the fetcher's errors show it, without
// credentials.
func (l Location) String() string {
	if l.OCI != nil {
		return OCIScheme + l.OCI.String()
	}
	if l.URL != nil {
		return l.URL.Redacted()
	}
	return ""
}

// OCIScheme starts an artifact URL that names an OCI artifact.
const OCIScheme = "oci://"

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
	loc, err := ParseArtifactURL(artifactURL)
	if err != nil {
		return Target{}, err
	}
	return Target{Digest: digestValue, Hex: hex, Location: loc}, nil
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

// ParseArtifactURL validates a value of aether.dev/artifact-url: an
// http(s) URL, or oci://<registry>/<repo>@sha256:<64 hex> (the manifest's
// digest). An OCI artifact is named by digest only, never by a tag: a tag
// can be moved to other content, and the annotation must name one release.
func ParseArtifactURL(raw string) (Location, error) {
	var loc Location
	var err error
	if rest, ok := strings.CutPrefix(raw, OCIScheme); ok {
		loc.OCI, err = parseOCI(rest)
	} else {
		loc.URL, err = parseHTTP(raw)
	}
	if err != nil {
		return Location{}, &Error{Key: ArtifactURL, Problem: err.Error()}
	}
	return loc, nil
}

// pinByDigest is how an OCI artifact URL must look.
const pinByDigest = "pin it by its manifest digest, oci://<registry>/<repo>@sha256:<64 hex>, as kubectl devhot push --to writes it"

func parseOCI(ref string) (*name.Digest, error) {
	if host, _, ok := strings.Cut(ref, "/"); ok && strings.Contains(host, "@") || strings.Count(ref, "@") > 1 {
		// Not echoed: what precedes the @ may be a password.
		return nil, errors.New("an oci:// URL must not carry credentials; annotations are readable by anyone who can read the Deployment")
	}
	shown := OCIScheme + ref
	repo, dgst, ok := strings.Cut(ref, "@")
	switch {
	case !ok && strings.Contains(path.Base(ref), ":"):
		return nil, fmt.Errorf("%q names a tag, which can move to other content: %s", shown, pinByDigest)
	case !ok:
		return nil, fmt.Errorf("%q has no digest: %s", shown, pinByDigest)
	case strings.Contains(path.Base(repo), ":"):
		return nil, fmt.Errorf("%q names both a tag and a digest: drop the tag, %s", shown, pinByDigest)
	}
	if hex, ok := strings.CutPrefix(dgst, digest.Prefix); !ok || !digest.IsHex(hex) {
		return nil, fmt.Errorf("%q: the digest must be %q followed by 64 lowercase hex digits", shown, digest.Prefix)
	}
	if reg, _, ok := strings.Cut(repo, "/"); !ok || !strings.ContainsAny(reg, ".:") && reg != "localhost" {
		return nil, fmt.Errorf("%q must start with the registry's host (a name with a dot or a port, or localhost), then the repository: %s", shown, pinByDigest)
	}
	d, err := name.NewDigest(ref, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", shown, err)
	}
	return &d, nil
}

func parseHTTP(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("not set")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme must be http, https or oci", raw)
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
