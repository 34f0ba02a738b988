package fetcher

import (
	"strings"
	"testing"
	"time"

	k8stesting "k8s.io/client-go/testing"

	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// deploymentActions counts the fetcher's requests for deployments by verb.
func deploymentActions(h *harness) map[string][]k8stesting.Action {
	out := map[string][]k8stesting.Action{}
	for _, a := range h.client.Actions() {
		if a.GetResource().Resource == "deployments" {
			out[a.GetVerb()] = append(out[a.GetVerb()], a)
		}
	}
	return out
}

// TestPollMode: a GET every interval, nothing else; a missing digest is
// logged once, not once per poll; a digest that appears is applied.
func TestPollMode(t *testing.T) {
	srv := newArtifactServer(t)
	art := app(t, "v1")
	h := newHarness(t, nil, func(c *Config) {
		c.FetchMode = FetchPoll
		c.FetchInterval = 20 * time.Millisecond
	})
	h.run()
	wait.Until(t, "three polls", 10*time.Second, func() bool { return len(deploymentActions(h)["get"]) >= 3 })
	start := len(deploymentActions(h)["get"])
	time.Sleep(300 * time.Millisecond)
	polls := len(deploymentActions(h)["get"]) - start
	// 15 intervals; allow for a busy machine, but not for a busy loop.
	if polls < 5 || polls > 17 {
		t.Errorf("%d GETs in 300ms at a 20ms interval", polls)
	}
	acts := deploymentActions(h)
	if len(acts["list"])+len(acts["watch"]) != 0 {
		t.Errorf("poll mode listed or watched: %v", acts)
	}
	for _, a := range acts["get"] {
		if g := a.(k8stesting.GetAction); g.GetName() != testDeployment || g.GetNamespace() != testNamespace {
			t.Errorf("GET %s/%s", g.GetNamespace(), g.GetName())
		}
	}
	if n := strings.Count(h.logs.String(), "no aether.dev/digest annotation yet"); n != 1 {
		t.Errorf("missing digest logged %d times, want once", n)
	}

	h.annotate(target(digestOf(art), srv.serve("/v1.tar.gz", art)))
	h.waitLines("REFRESH_OK", 1)
}

// TestWatchMode: an annotation change reaches the fetcher through the
// watch, and every list and watch is narrowed to the one Deployment by a
// field selector, which is all the Role allows.
func TestWatchMode(t *testing.T) {
	srv := newArtifactServer(t)
	artA, artB := app(t, "A"), app(t, "B")
	h := newHarness(t, target(digestOf(artA), srv.serve("/a.tar.gz", artA)), nil)
	f := h.open()
	h.run()
	h.waitLines("REFRESH_OK", 1)
	h.annotate(target(digestOf(artB), srv.serve("/b.tar.gz", artB)))
	lines := h.waitLines("REFRESH_OK", 2)
	if r := mustParse(t, lines[1]); r.Digest != digestOf(artB) {
		t.Fatalf("line %q, want B", lines[1])
	}
	if got := f.ws.Current(); got != digestOf(artB) {
		t.Errorf("current = %q", got)
	}

	acts := deploymentActions(h)
	if len(acts["list"]) == 0 || len(acts["watch"]) == 0 {
		t.Fatalf("no list and watch: %v", acts)
	}
	want := "metadata.name=" + testDeployment
	for _, a := range acts["list"] {
		if l := a.(k8stesting.ListAction); l.GetListRestrictions().Fields.String() != want || l.GetNamespace() != testNamespace {
			t.Errorf("list in %q with fields %q", l.GetNamespace(), l.GetListRestrictions().Fields)
		}
	}
	for _, a := range acts["watch"] {
		if w := a.(k8stesting.WatchAction); w.GetWatchRestrictions().Fields.String() != want || w.GetNamespace() != testNamespace {
			t.Errorf("watch in %q with fields %q", w.GetNamespace(), w.GetWatchRestrictions().Fields)
		}
	}
	// The only GET is the test's own, in annotate.
	if n := len(acts["get"]); n != 1 {
		t.Errorf("%d GETs in watch mode", n)
	}
}
