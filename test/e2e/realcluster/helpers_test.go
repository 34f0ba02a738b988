package realcluster

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
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
