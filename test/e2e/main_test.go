// Package e2e checks the webhook and the fetcher as one working whole, on
// the local control plane (real kube-apiserver and etcd, see
// test/framework/controlplane): the sample Deployment is applied with the pinned
// kubectl, mutated by the webhook behind TLS, and each of its pods runs as
// local processes (test/framework/localpod) — cmd/fetcher with the service account's
// token and the app under real `node --watch` — fed by a loopback artifact
// server. One test per behaviour: H1, H2, a bad artifact, an API outage and
// scale-out (issue 4).
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
)

var (
	cp *controlplane.ControlPlane
	// fetcherBin is cmd/fetcher, built once for every test.
	fetcherBin string
)

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("node"); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: the e2e tests run the app under node --watch:", err)
		os.Exit(1)
	}
	controlplane.Main(m, "e2e", func(c *controlplane.ControlPlane) (func(), error) {
		cp = c
		dir, err := os.MkdirTemp("", "aether-e2e-bin-")
		if err != nil {
			return nil, err
		}
		if fetcherBin, err = controlplane.GoBuild(dir, "./cmd/fetcher"); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		stop, err := cp.StartWebhook(cp.WebhookOptions())
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		return func() { stop(); os.RemoveAll(dir) }, nil
	})
}
