package realcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

const (
	deployment = realpod.Deployment
	appName    = realpod.AppContainer
	h1Ceiling  = realpod.H1Ceiling
)

// kubectlBin is the pinned kubectl that make tools builds into bin/.
var kubectlBin = filepath.Join(controlplane.RepoRoot(), "bin", "kubectl")

// clusterNS runs the pinned kubectl against a real cluster (the
// single-node one of test/framework/cluster, or kind), in one namespace.
type clusterNS struct {
	kubeconfig string
	ns         string
}

// kc is the pinned kubectl in k's cluster and namespace.
func (k *clusterNS) kc() realpod.Kubectl {
	return realpod.Kubectl{Bin: kubectlBin, Kubeconfig: k.kubeconfig, Namespace: k.ns}
}

// run runs the pinned kubectl with stdin and args, and returns its stdout.
func (k *clusterNS) run(stdin string, args ...string) (string, error) {
	return k.kc().Run(stdin, args...)
}

func (k *clusterNS) kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := k.run(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// liveOn waits for the rollout of the sample, then checks that it has
// exactly want Running pods and that each answers version v; it returns
// their names.
func (k *clusterNS) liveOn(t *testing.T, want, v int) []string {
	t.Helper()
	k.kubectl(t, "", "rollout", "status", "deployment/"+deployment, "--timeout=60s")
	pods := strings.Fields(k.kubectl(t, "", "get", "pods", "-l", "app="+deployment,
		"--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}"))
	if len(pods) != want {
		t.Fatalf("running pods %v, want %d", pods, want)
	}
	for _, pod := range pods {
		if a, err := k.answer(pod); err != nil || a.Version != v {
			t.Fatalf("pod %s answered %+v (%v), want version %d", pod, a, err, v)
		}
	}
	return pods
}

// answer asks the app in pod for its version, process and start count.
func (k *clusterNS) answer(pod string) (localpod.Answer, error) { return k.kc().Answer(pod) }

// count counts the lines of a container's log that start with prefix.
func (k *clusterNS) count(t *testing.T, prefix string, logsArgs ...string) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(k.kubectl(t, "", append([]string{"logs"}, logsArgs...)...), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// plugin is cmd/kubectl-devhot, built once for the package's tests.
var plugin struct {
	once sync.Once
	path string
	err  error
}

// devhot runs kubectl devhot with args in k's cluster and namespace and
// returns its output (stdout and stderr, where kubectl prints the
// webhook's warnings); a failure fails t.
func (k *clusterNS) devhot(t *testing.T, args ...string) string {
	t.Helper()
	out, err := k.devhotErr(t, args...)
	if err != nil {
		t.Fatalf("kubectl devhot %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// devhotErr is devhot that returns the failure.
func (k *clusterNS) devhotErr(t *testing.T, args ...string) (string, error) {
	t.Helper()
	plugin.once.Do(func() {
		dir, err := os.MkdirTemp("", "aether-devhot-plugin-")
		if err != nil {
			plugin.err = err
			return
		}
		plugin.path, plugin.err = controlplane.GoBuild(dir, "./cmd/kubectl-devhot")
	})
	if plugin.err != nil {
		t.Fatal(plugin.err)
	}
	cmd := exec.Command(plugin.path, append([]string{"--kubeconfig", k.kubeconfig, "-n", k.ns}, args...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("kubectl devhot %s:\n%s", strings.Join(args, " "), out)
	return string(out), err
}

// stopWebhook scales the chart's Deployment, the webhook and the manager
// with it, to 0 and waits until none of its pods is left. start scales it
// back to the replicas it had; t's cleanup does so too, and waits for the
// rollout.
func stopWebhook(t *testing.T, kubeconfig string) (start func()) {
	t.Helper()
	system := &clusterNS{kubeconfig: kubeconfig, ns: webhookNamespace}
	replicas := "--replicas=" + system.kubectl(t, "", "get", "deployment", "aether-devhot", "-o", "jsonpath={.spec.replicas}")
	start = func() { system.kubectl(t, "", "scale", "deployment/aether-devhot", replicas) }
	system.kubectl(t, "", "scale", "deployment/aether-devhot", "--replicas=0")
	t.Cleanup(func() {
		start()
		system.kubectl(t, "", "rollout", "status", "deployment/aether-devhot", "--timeout=120s")
	})
	wait.For(t, "no webhook pod left", 60*time.Second, func() error {
		if pods := system.kubectl(t, "", "get", "pods", "-l", "app.kubernetes.io/component=webhook", "-o", "name"); pods != "" {
			return fmt.Errorf("still running: %s", pods)
		}
		return nil
	})
	return start
}

// enableSample applies the sample unlabelled (its curl image is not on
// this node), enables it with kubectl devhot enable, scales it to
// replicas, and returns a source directory holding its server.js.
func (k *clusterNS) enableSample(t *testing.T, replicas int) (src string) {
	t.Helper()
	manifest, err := realpod.SampleManifest(0)
	if err != nil {
		t.Fatal(err)
	}
	k.kubectl(t, strings.Replace(manifest, `    aether.dev/dev-hot: "true"`+"\n", "", 1), "apply", "-f", "-")
	k.devhot(t, "enable", "deploy/"+deployment)
	k.kubectl(t, "", "scale", "deployment", deployment, fmt.Sprintf("--replicas=%d", replicas))
	src = t.TempDir()
	server, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "app", "server.js"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "server.js"), server, 0o644); err != nil {
		t.Fatal(err)
	}
	return src
}
