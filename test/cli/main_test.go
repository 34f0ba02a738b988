// Package cli checks `kubectl devhot` end to end on the local control
// plane (test/framework/controlplane): the built plugin pushes a directory to the
// artifact store on loopback (--store), annotates the sample Deployment
// through the real webhook, and waits on the Events of the real fetcher,
// whose pod runs as local processes (test/framework/localpod) with the app under
// real `node --watch`. One test per behaviour of issue 6.
package cli

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
)

var (
	cp *controlplane.ControlPlane
	// fetcherBin and pluginBin are cmd/fetcher and cmd/kubectl-devhot,
	// built once for every test.
	fetcherBin, pluginBin string
)

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("node"); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: the kubectl devhot tests run the app under node --watch:", err)
		os.Exit(1)
	}
	controlplane.Main(m, "cli", func(c *controlplane.ControlPlane) (func(), error) {
		cp = c
		dir, err := os.MkdirTemp("", "aether-cli-bin-")
		if err != nil {
			return nil, err
		}
		if fetcherBin, err = controlplane.GoBuild(dir, "./cmd/fetcher"); err == nil {
			pluginBin, err = controlplane.GoBuild(dir, "./cmd/kubectl-devhot")
		}
		var stop func()
		if err == nil {
			stop, err = cp.StartWebhook(cp.WebhookOptions())
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		return func() { stop(); os.RemoveAll(dir) }, nil
	})
}
