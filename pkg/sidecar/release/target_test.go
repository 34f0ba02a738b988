package release_test

import (
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

func TestParseTarget(t *testing.T) {
	good := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		name, digest, url string
		// wantIn names the annotation the error must mention; "" means valid.
		wantIn string
	}{
		{"valid https", good, "https://artifacts.example/app.tgz?x=1", ""},
		{"valid http with port", good, "http://10.0.0.1:8080/app.tgz", ""},
		{"digest missing", "", "https://a/app.tgz", annotations.Digest},
		{"digest without algorithm", strings.Repeat("ab", 32), "https://a/app.tgz", annotations.Digest},
		{"digest sha512", "sha512:" + strings.Repeat("ab", 32), "https://a/app.tgz", annotations.Digest},
		{"digest uppercase", "sha256:" + strings.Repeat("AB", 32), "https://a/app.tgz", annotations.Digest},
		{"digest short", "sha256:abcd", "https://a/app.tgz", annotations.Digest},
		{"digest with space", good + " ", "https://a/app.tgz", annotations.Digest},
		{"url missing", good, "", annotations.ArtifactURL},
		{"file url", good, "file:///etc/passwd", annotations.ArtifactURL},
		{"ftp url", good, "ftp://a/app.tgz", annotations.ArtifactURL},
		{"relative url", good, "/app.tgz", annotations.ArtifactURL},
		{"no host", good, "http:///app.tgz", annotations.ArtifactURL},
		{"opaque", good, "http:app.tgz", annotations.ArtifactURL},
		{"credentials", good, "https://user:secret@a/app.tgz", annotations.ArtifactURL},
		{"unparsable", good, "http://a b/%zz", annotations.ArtifactURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := release.ParseTarget(tc.digest, tc.url)
			if tc.wantIn == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tg.Digest != tc.digest || "sha256:"+tg.Hex != tc.digest || tg.URL.String() != tc.url {
					t.Errorf("target %+v does not match its input", tg)
				}
				return
			}
			if release.ReasonOf(err) != refresh.ReasonBadAnnotation {
				t.Fatalf("error %v, want reason bad_annotation", err)
			}
			if !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("error %q does not name %s", err, tc.wantIn)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

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
