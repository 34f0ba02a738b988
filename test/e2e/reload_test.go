package e2e

import (
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// H1: annotating a new digest makes the app answer the new code, well
// within the seed's 10 s ceiling.
func TestH1AnnotateDigestReloads(t *testing.T) {
	s := newSample(t)
	s.push(1)
	pod := s.startPod("", 1)
	before := answer(t, pod)

	digest, sent := s.push(2)
	stored := time.Now()
	after, latency := waitVersion(t, pod, 2, sent, h1Ceiling)
	t.Logf("H1: version 2 answering %d ms after kubectl annotate started, %d ms after it returned",
		latency.Milliseconds(), time.Since(stored).Milliseconds())

	if after.PID == before.PID {
		t.Errorf("same process before and after: %+v, %+v", before, after)
	}
	if after.Starts != before.Starts+1 {
		// The fetcher re-touches if the app is slow to load; not an error.
		t.Logf("%d starts for one reload", after.Starts-before.Starts)
	}
	ok := pod.Refreshes(refresh.MarkerOK)
	if len(ok) != 2 || ok[1].Digest != digest {
		t.Errorf("REFRESH_OK lines %v, want a second one for %s", ok, digest)
	}
	for _, r := range pod.Refreshes(refresh.MarkerLive) {
		t.Logf("fetcher: %s", r)
	}
}

// H2: an unchanged digest causes no download, no restart and no rollout;
// here the same digest and URL are annotated again.
func TestH2SameDigestAgain(t *testing.T) {
	s := newSample(t)
	s.push(1)
	s.startPod("", 1)
	noReload(t, s, func() {
		s.push(1)
	})
}

// H2: another annotation changes; the fetcher sees the update and ignores it.
func TestH2UnrelatedAnnotation(t *testing.T) {
	s := newSample(t)
	s.push(1)
	s.startPod("", 1)
	noReload(t, s, func() {
		s.annotate("example.com/owner=someone-else")
	})
	if got := s.deployment().Annotations["example.com/owner"]; got != "someone-else" {
		t.Fatalf("annotation not stored: %q", got)
	}
}

// H2: the same manifest applied again goes through the webhook again.
func TestH2IdenticalApply(t *testing.T) {
	s := newSample(t)
	s.push(1)
	s.startPod("", 1)
	noReload(t, s, func() {
		// The apply patch puts back the original initContainer and command;
		// the webhook must inject exactly what is stored.
		t.Logf("second apply: %s", s.apply())
	})
	if d := s.deployment().Annotations[annotations.Digest]; d != s.build(1).Digest {
		t.Errorf("apply dropped the digest annotation: %q", d)
	}
}

// noReload runs change and checks, over about 2 s, that s's only pod
// downloads nothing, is not restarted and keeps its template.
func noReload(t *testing.T, s *sample, change func()) {
	t.Helper()
	pod := s.pods[0]
	want := answer(t, pod)
	requests := s.arts.Requests()
	template := s.template()
	refreshes := len(pod.Refreshes())

	change()
	steady(t, pod, want, 2*time.Second)

	if n := s.arts.Requests(); n != requests {
		t.Errorf("artifact server: %d requests, want %d (a download)", n, requests)
	}
	if got := s.template(); got != template {
		t.Errorf(".spec.template changed (a rollout):\n%s\n%s", template, got)
	}
	if l := pod.Refreshes(); len(l) != refreshes {
		t.Errorf("fetcher logged %v", l[refreshes:])
	}
}
