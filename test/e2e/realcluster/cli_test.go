package realcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
)

// pushedLine is push's last line: the digest and how many pods run it.
var pushedLine = regexp.MustCompile(`deployment\.apps/hello: (sha256:[0-9a-f]{64}) live on (\d+)/(\d+) pods`)

// TestClusterKubectlDevhot runs kubectl devhot on the cluster of
// test/framework/cluster as a user would after `helm install`: enable an unlabelled
// Deployment, push a directory through the API server's service proxy to
// the chart's store (the default upload path, no --store), push the same
// tree again (nothing to do), push a change, status (each pod live on it),
// history, rollback and logs, then disable. The pods download from the
// default artifact URL, aether-devhot-store.aether-system.svc, through the
// cluster's DNS.
func TestClusterKubectlDevhot(t *testing.T) {
	kubeconfig := clusterKubeconfig(t)
	k := clusterNamespace(t, kubeconfig, true)
	devhot := func(args ...string) string {
		t.Helper()
		return k.devhot(t, args...)
	}

	// The sample unlabelled, with no pods: its curl image is not on this node.
	manifest, err := realpod.SampleManifest(0)
	if err != nil {
		t.Fatal(err)
	}
	k.kubectl(t, strings.Replace(manifest, `    aether.dev/dev-hot: "true"`+"\n", "", 1), "apply", "-f", "-")
	initContainer := func() string {
		return k.kubectl(t, "", "get", "deployment", deployment, "-o", "jsonpath={.spec.template.spec.initContainers[0].name}")
	}

	if out := devhot("enable", "deploy/"+deployment); !strings.Contains(out, "enabled: the fetcher is injected") {
		t.Fatalf("enable did not report the injection")
	}
	if got := initContainer(); got != "aether-fetcher" {
		t.Fatalf("after enable: initContainers[0] is %q, want aether-fetcher", got)
	}
	k.kubectl(t, "", "scale", "deployment", deployment, "--replicas=2")

	src := t.TempDir()
	server, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "app", "server.js"))
	if err != nil {
		t.Fatal(err)
	}
	save := func(v int) {
		t.Helper()
		for name, b := range map[string][]byte{"server.js": server, "version.json": fmt.Appendf(nil, `{"version":%d}`, v)} {
			if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	push := func() string {
		t.Helper()
		return devhot("push", "deploy/"+deployment, src)
	}
	// live checks push's last line, then that every Running pod answers v.
	live := func(out string, v int) (digest string) {
		t.Helper()
		m := pushedLine.FindStringSubmatch(out)
		if m == nil || m[2] != "2" || m[3] != "2" {
			t.Fatalf("push did not report its digest live on 2/2 pods")
		}
		k.liveOn(t, 2, v)
		return m[1]
	}

	// The first push reaches pods whose fetchers wait for a first release.
	save(1)
	digests := []string{live(push(), 1)}
	if out := push(); !strings.Contains(out, "nothing to do") {
		t.Errorf("a second push of the same tree did not say it had nothing to do")
	}
	save(2)
	digest := live(push(), 2)

	status := devhot("status", "deploy/"+deployment)
	for _, want := range []string{`injected\s+yes`, `digest\s+` + digest, `artifact\s+http://aether-devhot-store\.aether-system\.svc/`} {
		if !regexp.MustCompile(`(?m)^` + want).MatchString(status) {
			t.Errorf("status has no line %q", want)
		}
	}
	for _, pod := range strings.Fields(k.kubectl(t, "", "get", "pods", "-l", "app="+deployment, "-o", "jsonpath={.items[*].metadata.name}")) {
		// push returned once every pod had loaded it: live, on the digest.
		short := digest[:len("sha256:")+12]
		if !regexp.MustCompile(`(?m)^` + pod + `\s+live\s+` + regexp.QuoteMeta(short) + `\s.*<none>$`).MatchString(status) {
			t.Errorf("status has no row for pod %s live on %s with no failure", pod, short)
		}
	}

	// history lists both pushes, rollback goes back to the first without
	// a download, and logs prints every pod's fetcher and app.
	first := digests[0]
	history := devhot("history", "deploy/"+deployment)
	for _, want := range []string{digest + " (desired)", first} {
		if !strings.Contains(history, want) {
			t.Errorf("history does not list %s", want)
		}
	}
	live(devhot("rollback", "deploy/"+deployment), 1)
	if got := k.kubectl(t, "", "get", "deployment", deployment, "-o", "jsonpath={.metadata.annotations.aether\\.dev/digest}"); got != first {
		t.Errorf("after rollback the digest is %s, want the first push's %s", got, first)
	}
	logs := devhot("logs", "deploy/"+deployment, "--tail", "-1")
	for _, pod := range strings.Fields(k.kubectl(t, "", "get", "pods", "-l", "app="+deployment, "-o", "jsonpath={.items[*].metadata.name}")) {
		for _, want := range []string{pod + " aether-fetcher | REFRESH_LIVE digest=" + first, pod + " app | "} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %q", want)
			}
		}
	}

	if out := devhot("disable", "deploy/"+deployment); !strings.Contains(out, "disabled: the original Deployment is back") {
		t.Errorf("disable did not report the revert")
	}
	if got := initContainer(); got != "fetch" {
		t.Errorf("after disable: initContainers[0] is %q, want the original fetch", got)
	}
}
