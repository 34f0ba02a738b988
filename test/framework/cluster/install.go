package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// InstallNamespace is the namespace the product is installed in, the
// README's.
const InstallNamespace = "aether-system"

// Install installs the product on the running cluster the way the README
// tells a user to without cert-manager: helm install of charts/aether-devhot
// with certManager.enabled=false, the locally imported image (which is
// never pulled) and the store at its default URL (the cluster's DNS
// resolves it), then `go run ./cmd/certs` for the TLS Secret and the caBundle,
// then waits for the webhook's rollout.
func (c *Cluster) Install() error {
	if !c.Running() {
		return fmt.Errorf("no cluster runs in %s: run make cluster-up first", c.Dir)
	}
	repo, tag, _ := strings.Cut(strings.TrimPrefix(ProjectImage, "docker.io/library/"), ":")
	steps := []struct {
		name string
		args []string
	}{
		{"helm install charts/aether-devhot", []string{c.bin("helm"), "upgrade", "--install", "aether-devhot", "charts/aether-devhot",
			"--namespace", InstallNamespace, "--create-namespace",
			"--set", "certManager.enabled=false",
			"--set", "image.repository=" + repo, "--set", "image.tag=" + tag, "--set", "image.pullPolicy=Never"}},
		{"go run ./cmd/certs", []string{"go", "run", "./cmd/certs", "--namespace", InstallNamespace}},
		{"webhook rollout", []string{c.bin("kubectl"), "-n", InstallNamespace, "rollout", "status", "deployment/aether-devhot", "--timeout=180s"}},
		{"store rollout", []string{c.bin("kubectl"), "-n", InstallNamespace, "rollout", "status", "deployment/aether-devhot-store", "--timeout=180s"}},
	}
	for _, s := range steps {
		err := c.phase(s.name, func() error {
			cmd := exec.Command(s.args[0], s.args[1:]...)
			cmd.Dir = c.Repo
			cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig())
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", strings.Join(s.args, " "), err, out)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Installed reports, as an error, why the product cannot be used on this
// cluster: the cluster is not running, or the webhook's Deployment is not
// available. It starts nothing.
func (c *Cluster) Installed() error {
	if !c.Running() {
		return fmt.Errorf("no cluster runs in %s", c.Dir)
	}
	_, err := c.Kubectl("-n", InstallNamespace, "rollout", "status", "deployment/aether-devhot", "--timeout=5s")
	return err
}
