// Package chart tests the install paths of charts/aether-devhot on the real
// local control plane (test/framework/controlplane): helm lint and template with every
// toggle, a server-side apply of every rendered object (the cert-manager and
// Prometheus Operator CRDs installed first, from their Go modules), the
// manager's RBAC checked with `kubectl auth can-i` and by running the
// manager under its ServiceAccount, the artifact store's pusher Role
// checked with `kubectl auth can-i` and requests through the service proxy,
// and the plain manifest
// deploy/aether-devhot.yaml with the cmd/certs tool for installs without
// cert-manager.
package chart

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
)

// Modules whose CRDs the rendered objects need; fetched with
// `go mod download` into the module cache, nothing kept in git.
const (
	certManagerModule  = "github.com/cert-manager/cert-manager@v1.21.2"
	promOperatorModule = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
	certManagerCRDDir  = "deploy/crds"
	promOperatorCRDDir = "example/prometheus-operator-crd"
	fieldManager       = "aether-chart-test"
)

var (
	cp *controlplane.ControlPlane
	// helmBin is bin/helm, beside the other pinned tools (make tools).
	helmBin string
	// chartDir is charts/aether-devhot.
	chartDir = filepath.Join(controlplane.RepoRoot(), "charts", "aether-devhot")
)

func TestMain(m *testing.M) {
	controlplane.Main(m, "chart", func(c *controlplane.ControlPlane) (func(), error) {
		cp = c
		helmBin = filepath.Join(filepath.Dir(c.Kubectl), "helm")
		if _, err := os.Stat(helmBin); err != nil {
			return nil, fmt.Errorf("no helm beside kubectl: run `make tools`: %w", err)
		}
		// envtest registered test/testdata/webhook.yaml under the name the
		// chart's default release uses (aether-devhot), failing closed
		// towards a server that no test here runs: the chart's own
		// configurations replace it.
		if _, _, err := cp.Run("", "delete", "mutatingwebhookconfiguration", "aether-devhot"); err != nil {
			return nil, err
		}
		return nil, installCRDs()
	})
}

// installCRDs applies cert-manager's CRDs and the PodMonitor and
// ServiceMonitor CRDs, and waits until they serve.
func installCRDs() error {
	cm, err := moduleDir(certManagerModule)
	if err != nil {
		return err
	}
	po, err := moduleDir(promOperatorModule)
	if err != nil {
		return err
	}
	args := []string{"apply", "--server-side", "--field-manager", fieldManager,
		"-f", filepath.Join(cm, certManagerCRDDir),
		"-f", filepath.Join(po, promOperatorCRDDir, "monitoring.coreos.com_podmonitors.yaml"),
		"-f", filepath.Join(po, promOperatorCRDDir, "monitoring.coreos.com_servicemonitors.yaml"),
	}
	if _, _, err := cp.Run("", args...); err != nil {
		return err
	}
	_, _, err = cp.Run("", "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
	return err
}

// moduleDir downloads mod ("path@version") into the module cache and
// returns its directory. It runs outside the main module, so go.mod and
// go.sum stay as they are.
func moduleDir(mod string) (string, error) {
	tmp, err := os.MkdirTemp("", "aether-moddownload-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, runErr := cmd.Output()
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		var stderr string
		if ee, ok := runErr.(*exec.ExitError); ok {
			stderr = strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("go mod download %s: %v %s %s", mod, runErr, info.Error, stderr)
	}
	return info.Dir, nil
}
