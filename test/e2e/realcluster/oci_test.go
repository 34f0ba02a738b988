package realcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
)

// TestClusterOCI pushes the sample with `push --to oci://` to the cluster's
// registry (distribution, plain HTTP on cluster.RegistryAddr) instead of
// the store, in a namespace that enforces Pod Security "restricted": the
// webhook projects the pod's imagePullSecret into the fetcher's token
// volume, both pods pull the artifact by digest and go live, and a second
// push goes live too.
func TestClusterOCI(t *testing.T) {
	kubeconfig := clusterKubeconfig(t)
	k := clusterNamespace(t, kubeconfig, true)
	// The registry takes anyone; the login is read all the same, by push
	// (the user's docker config) and by the fetchers (the pull secret).
	login := fmt.Sprintf(`{"auths":{%q:{"auth":"ZGV2OmRldg=="}}}`, cluster.RegistryAddr)
	docker := t.TempDir()
	if err := os.WriteFile(filepath.Join(docker, "config.json"), []byte(login), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", docker)
	k.kubectl(t, "", "create", "secret", "generic", "regcred", "--type=kubernetes.io/dockerconfigjson",
		"--from-literal=.dockerconfigjson="+login)

	manifest, err := realpod.SampleManifest(2)
	if err != nil {
		t.Fatal(err)
	}
	const inits = "      initContainers:\n"
	if !strings.Contains(manifest, inits) {
		t.Fatal("the sample has no initContainers to put imagePullSecrets before")
	}
	k.kubectl(t, strings.Replace(manifest, inits, "      imagePullSecrets:\n      - name: regcred\n"+inits, 1), "apply", "-f", "-")
	sources := k.kubectl(t, "", "get", "deployment", deployment, "-o",
		`jsonpath={.spec.template.spec.volumes[?(@.name=="aether-token")].projected.sources[*].secret.items[*].path}`)
	if sources != "pull-secrets/regcred/.dockerconfigjson" {
		t.Fatalf("the token volume projects %q, want the pull secret", sources)
	}

	src := t.TempDir()
	server, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "app", "server.js"))
	if err != nil {
		t.Fatal(err)
	}
	to := "oci://" + cluster.RegistryAddr + "/" + k.ns + "/app"
	for _, v := range []int{1, 2} {
		for name, b := range map[string][]byte{"server.js": server, "version.json": fmt.Appendf(nil, `{"version":%d}`, v)} {
			if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out := k.devhot(t, "push", "deploy/"+deployment, src, "--to", to)
		m := pushedLine.FindStringSubmatch(out)
		if m == nil || m[2] != "2" || m[3] != "2" {
			t.Fatalf("push v%d did not report its digest live on 2/2 pods", v)
		}
		url := k.kubectl(t, "", "get", "deployment", deployment, "-o", `jsonpath={.metadata.annotations.aether\.dev/artifact-url}`)
		if !strings.HasPrefix(url, to+"@sha256:") {
			t.Errorf("artifact URL %q, want %s@sha256:…", url, to)
		}
		for _, pod := range k.liveOn(t, 2, v) {
			logs := k.kubectl(t, "", "logs", pod, "-c", "aether-fetcher")
			i := strings.Index(logs, "REFRESH_OK digest="+m[1])
			if i < 0 {
				t.Fatalf("pod %s's fetcher did not log REFRESH_OK for %s:\n%s", pod, m[1], logs)
			}
			line, _, _ := strings.Cut(logs[i:], "\n")
			t.Logf("%s: %s", pod, line) // latency_ms: the pull from the registry, verify and publish
		}
	}
}
