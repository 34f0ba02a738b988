package fetcher

import (
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	digestC = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	urlA    = "http://127.0.0.1:1/a.tar.gz"
)

func TestDesiredOf(t *testing.T) {
	d := DesiredOf(map[string]string{
		annotations.Digest: digestA, annotations.ArtifactURL: urlA,
		annotations.CommitSHA: "abc123", annotations.BuildTimestamp: "2026-01-02T03:04:05Z", annotations.HealthTimeoutSec: "60", "other": "x",
	})
	want := Desired{Digest: digestA, ArtifactURL: urlA, CommitSHA: "abc123", BuildTimestamp: "2026-01-02T03:04:05Z", HealthTimeoutSec: "60"}
	if d != want {
		t.Errorf("got %+v, want %+v", d, want)
	}
}

func TestDecide(t *testing.T) {
	now := time.Unix(1000, 0)
	a := Desired{Digest: digestA, ArtifactURL: urlA}
	failedA := attempts{key: a.key(), failures: 1, retryAt: now.Add(time.Second)}
	cases := []struct {
		name    string
		desired Desired
		current string
		reject  string
		att     attempts
		want    action
		why     string
	}{
		{"no digest", Desired{ArtifactURL: urlA}, "", "", attempts{}, actNone, "no aether.dev/digest annotation"},
		{"unchanged", a, digestA, "", attempts{}, actNone, whyLive},
		{"unchanged even after failures", a, digestA, "", failedA, actNone, whyLive},
		{"new digest", a, digestB, "", attempts{}, actApply, "applying"},
		{"first release", a, "", "", attempts{}, actApply, "applying"},
		{"backing off", a, digestB, "", failedA, actWait, "backing off"},
		{"backoff over", a, digestB, "", attempts{key: a.key(), failures: 1, retryAt: now}, actApply, "applying"},
		{"gave up", a, digestB, "", attempts{key: a.key(), failures: 3, gaveUp: true}, actNone, "gave up"},
		{"new URL after giving up", Desired{Digest: digestA, ArtifactURL: urlA + "?fixed"}, digestB, "", attempts{key: a.key(), gaveUp: true}, actApply, "applying"},
		{"rolled back", a, digestB, digestA, attempts{}, actNone, whyRejected},
		{"rolled back to the image's code", a, "", digestA, attempts{}, actNone, whyRejected},
		{"rolled back, even with a new URL", Desired{Digest: digestA, ArtifactURL: urlA + "?other"}, digestB, digestA, attempts{}, actNone, whyRejected},
		{"another digest was rolled back", a, digestB, digestC, attempts{}, actApply, "applying"},
		{"malformed digest", Desired{Digest: "sha256:xyz", ArtifactURL: urlA}, "", "", attempts{}, actFail, "bad annotation"},
		{"file URL", Desired{Digest: digestA, ArtifactURL: "file:///etc/passwd"}, "", "", attempts{}, actFail, "bad annotation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(tc.desired, tc.current, tc.reject, tc.att, now)
			if d.action != tc.want || !strings.Contains(d.why, tc.why) {
				t.Fatalf("got action %d (%s), want %d (%s)", d.action, d.why, tc.want, tc.why)
			}
			switch d.action {
			case actApply:
				if d.target.Digest != tc.desired.Digest || d.target.URL.String() != tc.desired.ArtifactURL {
					t.Errorf("target %+v", d.target)
				}
			case actWait:
				if d.wait != time.Second {
					t.Errorf("wait %v, want 1s", d.wait)
				}
			case actFail:
				if release.ReasonOf(d.err) != refresh.ReasonBadAnnotation || !release.IsFinal(d.err) {
					t.Errorf("err %v has reason %q and final %v, want a final bad_annotation", d.err, release.ReasonOf(d.err), release.IsFinal(d.err))
				}
			}
		})
	}
}

func TestAttemptsFailed(t *testing.T) {
	now := time.Unix(1000, 0)
	delay := func(n int) time.Duration { return time.Duration(n) * time.Second }
	var a attempts
	for n := 1; n <= 3; n++ {
		a = a.failed("k", false, 3, delay, now)
		if a.failures != n {
			t.Fatalf("failures = %d, want %d", a.failures, n)
		}
		if gaveUp := n == 3; a.gaveUp != gaveUp {
			t.Fatalf("after %d failures gaveUp = %v", n, a.gaveUp)
		}
		if n < 3 && a.retryAt != now.Add(time.Duration(n)*time.Second) {
			t.Fatalf("retryAt = %v", a.retryAt)
		}
	}
	if a = a.failed("other", false, 3, delay, now); a.failures != 1 || a.gaveUp {
		t.Errorf("a new target must start afresh: %+v", a)
	}
	unlimited := attempts{}
	for range 50 {
		unlimited = unlimited.failed("k", false, 0, delay, now)
	}
	if unlimited.gaveUp {
		t.Error("MaxRetries 0 must never give up")
	}
	if final := (attempts{}).failed("k", true, 0, delay, now); !final.gaveUp {
		t.Error("a final failure is never retried")
	}
}
