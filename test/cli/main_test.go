// Package cli checks `kubectl devhot` end to end on the local control
// plane (test/controlplane): the built plugin pushes a directory to the
// artifact store on loopback (--store), annotates the sample Deployment
// through the real webhook, and waits on the Events of the real fetcher,
// whose pod runs as local processes (test/localpod) with the app under
// real `node --watch`. One test per behaviour of issue 6.
package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/test/controlplane"
)

var (
	cp *controlplane.ControlPlane
	// fetcherBin and pluginBin are cmd/fetcher and cmd/kubectl-devhot,
	// built once for every test.
	fetcherBin, pluginBin string
)

// requireEnv makes a missing control plane a failure instead of a skip;
// `make test` sets it.
const requireEnv = "AETHER_REQUIRE_INTEGRATION"

func TestMain(m *testing.M) {
	if _, err := controlplane.Assets(); err != nil {
		if os.Getenv(requireEnv) != "" {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "SKIP kubectl devhot tests:", err)
		os.Exit(0)
	}
	if _, err := exec.LookPath("node"); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: the kubectl devhot tests run the app under node --watch:", err)
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "aether-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	started := time.Now()
	fetcherBin = filepath.Join(dir, "fetcher")
	pluginBin = filepath.Join(dir, "kubectl-devhot")
	for bin, pkg := range map[string]string{fetcherBin: "./cmd/fetcher", pluginBin: "./cmd/kubectl-devhot"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Dir = controlplane.RepoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	cp, err = controlplane.Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cp.Stop()
	stop, err := cp.StartWebhook(cp.WebhookOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	fmt.Fprintf(os.Stderr, "binaries built, control plane and webhook up in %s\n", time.Since(started).Round(time.Millisecond))
	return m.Run()
}
