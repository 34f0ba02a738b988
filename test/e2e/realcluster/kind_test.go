package realcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// KindKubeconfigEnv points TestKindH1H2 at a real cluster where the chart is
// installed (hack/kind/e2e.sh sets it: `make e2e-kind`). Unset, the test
// skips; every other test here uses the local control plane regardless.
const KindKubeconfigEnv = "AETHER_E2E_KUBECONFIG"

// TestKindH1H2 is H1 and H2 on real pods: the chart's webhook injects the
// fetcher into the sample Deployment, the kubelet runs it beside the app
// under `node --watch`, and the artifacts come from a server in the
// cluster. It needs a cluster with the chart installed (make e2e-kind).
func TestKindH1H2(t *testing.T) {
	kubeconfig := os.Getenv(KindKubeconfigEnv)
	if kubeconfig == "" {
		t.Skipf("%s is not set: this test runs on a kind cluster with `make e2e-kind` (needs Docker)", KindKubeconfigEnv)
	}
	k := &clusterNS{kubeconfig: kubeconfig, ns: controlplane.NamespaceName("e2e-", t)}
	k.kubectl(t, "", "create", "namespace", k.ns)
	t.Cleanup(func() {
		if _, err := k.run("", "delete", "namespace", k.ns, "--wait=false"); err != nil {
			t.Error(err)
		}
	})

	dir := t.TempDir()
	versions := map[int]artifact.Artifact{}
	fromFile := []string{"create", "configmap", "artifacts"}
	for _, v := range []int{1, 2} {
		a, err := artifact.App(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "app"), v)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, fmt.Sprintf("hello-v%d.tar.gz", v))
		if err := os.WriteFile(f, a.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		versions[v] = a
		fromFile = append(fromFile, "--from-file="+f)
	}
	k.kubectl(t, "", fromFile...)
	k.kubectl(t, "", "create", "deployment", "artifacts", "--image=node:20", "--port=8000", "--", "node", "-e", realpod.ArtifactServer)
	k.kubectl(t, "", "patch", "deployment", "artifacts", "--type=strategic", "-p",
		`{"spec":{"template":{"spec":{"volumes":[{"name":"artifacts","configMap":{"name":"artifacts"}}],"containers":[{"name":"node","volumeMounts":[{"name":"artifacts","mountPath":"/artifacts"}]}]}}}}`)
	k.kubectl(t, "", "expose", "deployment", "artifacts", "--port=80", "--target-port=8000")
	k.kubectl(t, "", "rollout", "status", "deployment/artifacts", "--timeout=180s")
	url := func(v int) string { return fmt.Sprintf("http://artifacts.%s.svc/hello-v%d.tar.gz", k.ns, v) }

	// The sample as it is, but for where the test app counts its starts.
	manifest, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const port = "        - name: PORT\n"
	if !strings.Contains(string(manifest), port) {
		t.Fatalf("test/testdata/deployment.yaml sets no PORT env to add APP_STATE_DIR beside")
	}
	edited := strings.Replace(string(manifest), port, "        - name: APP_STATE_DIR\n          value: /tmp\n"+port, 1)
	if out := k.kubectl(t, edited, "apply", "-f", "-"); !strings.Contains(out, "created") {
		t.Fatalf("kubectl apply: %s", out)
	}
	k.kubectl(t, "", "annotate", "--overwrite", "deployment", deployment,
		annotations.Digest+"="+versions[1].Digest, annotations.ArtifactURL+"="+url(1))
	k.kubectl(t, "", "rollout", "status", "deployment/"+deployment, "--timeout=300s")
	pod := strings.TrimSpace(k.kubectl(t, "", "get", "pods", "-l", "app="+deployment,
		"--field-selector=status.phase=Running", "-o", "jsonpath={.items[0].metadata.name}"))
	if got := k.kubectl(t, "", "get", "pod", pod, "-o", "jsonpath={.metadata.annotations.aether\\.dev/dev-hot}"); got != "true" {
		t.Fatalf("pod %s is not injected (annotation aether.dev/dev-hot = %q)", pod, got)
	}
	var before localpod.Answer
	wait.For(t, "version 1 answering", 60*time.Second, func() error {
		var err error
		if before, err = k.answer(pod); err == nil && before.Version != 1 {
			err = fmt.Errorf("answered %+v", before)
		}
		return err
	})

	t.Run("H1", func(t *testing.T) {
		sent := time.Now()
		k.kubectl(t, "", "annotate", "--overwrite", "deployment", deployment,
			annotations.Digest+"="+versions[2].Digest, annotations.ArtifactURL+"="+url(2))
		var after localpod.Answer
		wait.For(t, "version 2 answering", h1Ceiling, func() error {
			var err error
			if after, err = k.answer(pod); err == nil && after.Version != 2 {
				err = fmt.Errorf("answered %+v", after)
			}
			return err
		})
		t.Logf("H1: version 2 answering within %d ms of kubectl annotate (each check is a kubectl exec)", time.Since(sent).Milliseconds())
		if after.PID == before.PID {
			t.Errorf("same process before and after: %+v, %+v", before, after)
		}
	})

	t.Run("H2", func(t *testing.T) {
		want, err := k.answer(pod)
		if err != nil {
			t.Fatal(err)
		}
		downloads := k.count(t, "GET ", "deployment/artifacts")
		refreshes := k.count(t, "REFRESH_", pod, "-c", "aether-fetcher")
		template := k.kubectl(t, "", "get", "deployment", deployment, "-o", "jsonpath={.spec.template}")

		k.kubectl(t, "", "annotate", "--overwrite", "deployment", deployment,
			annotations.Digest+"="+versions[2].Digest, annotations.ArtifactURL+"="+url(2))
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
			if got, err := k.answer(pod); err != nil || got != want {
				t.Fatalf("app answered %+v (%v), want %+v: a restart or a reload", got, err, want)
			}
		}
		if n := k.count(t, "GET ", "deployment/artifacts"); n != downloads {
			t.Errorf("artifact server: %d requests, want %d (a download)", n, downloads)
		}
		if n := k.count(t, "REFRESH_", pod, "-c", "aether-fetcher"); n != refreshes {
			t.Errorf("fetcher logged %d REFRESH_ lines, want %d", n, refreshes)
		}
		if got := k.kubectl(t, "", "get", "deployment", deployment, "-o", "jsonpath={.spec.template}"); got != template {
			t.Errorf(".spec.template changed (a rollout):\n%s\n%s", template, got)
		}
	})
}
