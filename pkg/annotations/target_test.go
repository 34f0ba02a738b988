package annotations_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
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
		{"oci by digest", good, "oci://10.201.0.2:5000/ns/app@" + good, ""},
		{"oci by digest, nested repo", good, "oci://ghcr.io/org/team/app@" + good, ""},
		{"oci localhost", good, "oci://localhost/app@" + good, ""},
		{"oci tag", good, "oci://ghcr.io/org/app:v1", "pin it by its manifest digest"},
		{"oci tag on a registry with a port", good, "oci://10.0.0.1:5000/app:latest", "names a tag"},
		{"oci no tag no digest", good, "oci://ghcr.io/org/app", "has no digest"},
		{"oci tag and digest", good, "oci://ghcr.io/org/app:v1@" + good, "both a tag and a digest"},
		{"oci sha512", good, "oci://ghcr.io/org/app@sha512:" + strings.Repeat("ab", 64), "64 lowercase hex"},
		{"oci uppercase digest", good, "oci://ghcr.io/org/app@sha256:" + strings.Repeat("AB", 32), "64 lowercase hex"},
		{"oci short digest", good, "oci://ghcr.io/org/app@sha256:abcd", "64 lowercase hex"},
		{"oci without registry", good, "oci://library/app@" + good, "registry's host"},
		{"oci repo only", good, "oci://app@" + good, "registry's host"},
		{"oci uppercase repo", good, "oci://ghcr.io/Org/App@" + good, annotations.ArtifactURL},
		{"oci credentials", good, "oci://user:secret@ghcr.io/org/app@" + good, "credentials"},
		{"oci credentials, no digest", good, "oci://user:secret@ghcr.io/org/app", "credentials"},
		{"oci empty", good, "oci://", annotations.ArtifactURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := annotations.ParseTarget(tc.digest, tc.url)
			if tc.wantIn == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tg.Digest != tc.digest || "sha256:"+tg.Hex != tc.digest || tg.String() != tc.url || (tg.URL == nil) == (tg.OCI == nil) {
					t.Errorf("target %+v does not match its input", tg)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), annotations.ArtifactURL) && !strings.Contains(err.Error(), annotations.Digest) || !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("error %q does not name the annotation and %s", err, tc.wantIn)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

func TestParseFetchInterval(t *testing.T) {
	for v, want := range map[string]time.Duration{"1": time.Second, "5": 5 * time.Second, "3600": time.Hour} {
		if got, err := annotations.ParseFetchInterval(v); err != nil || got != want {
			t.Errorf("%q: %v, %v", v, got, err)
		}
	}
	for _, v := range []string{"0", "-1", "3601", "9999999999", "9999999999999999999", "5s", "", "1.5", "0x10"} {
		if _, err := annotations.ParseFetchInterval(v); err == nil || !strings.Contains(err.Error(), annotations.FetchIntervalSec) || !strings.Contains(err.Error(), "from 1 to 3600") {
			t.Errorf("%q: %v, want the range", v, err)
		}
	}
}

func TestParseHealthTimeout(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 30 * time.Second, "1": time.Second, "45": 45 * time.Second, "600": 10 * time.Minute} {
		if got, err := annotations.ParseHealthTimeout(v); err != nil || got != want {
			t.Errorf("%q: %v, %v", v, got, err)
		}
	}
	for _, v := range []string{"0", "-1", "601", "9999999999", "9999999999999999999", "30s", " 30", "1e3"} {
		if _, err := annotations.ParseHealthTimeout(v); err == nil || !strings.Contains(err.Error(), annotations.HealthTimeoutSec) || !strings.Contains(err.Error(), "from 1 to 600") {
			t.Errorf("%q: %v, want the key and the range", v, err)
		}
	}
}

// FuzzParseArtifactURL: any annotation value gives a location that says
// what it was parsed from, of exactly one kind, or an error naming the
// annotation.
func FuzzParseArtifactURL(f *testing.F) {
	good := "sha256:" + strings.Repeat("ab", 32)
	for _, s := range []string{"https://a/app.tgz", "oci://ghcr.io/org/app@" + good, "oci://ghcr.io/org/app:v1", "oci://u:p@h/r@" + good, "oci://", "oci://a@b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := annotations.ParseArtifactURL(raw)
		if err != nil {
			if !strings.Contains(err.Error(), annotations.ArtifactURL) {
				t.Fatalf("error %q does not name the annotation", err)
			}
			return
		}
		if (loc.URL == nil) == (loc.OCI == nil) {
			t.Fatalf("%q: location %+v is not of exactly one kind", raw, loc)
		}
		if loc.OCI != nil && loc.String() != raw {
			t.Fatalf("%q: parsed as %q", raw, loc.String())
		}
	})
}
