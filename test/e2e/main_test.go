// Package e2e checks the webhook and the fetcher as one working whole, on
// the local control plane (real kube-apiserver and etcd, see
// test/controlplane): the sample Deployment is applied with the pinned
// kubectl, mutated by the webhook behind TLS, and each of its pods runs as
// local processes (test/localpod) — cmd/fetcher with the service account's
// token and the app under real `node --watch` — fed by a loopback artifact
// server. One test per behaviour: H1, H2, a bad artifact, an API outage and
// scale-out (issue 4).
package e2e

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
	// fetcherBin is cmd/fetcher, built once for every test.
	fetcherBin string
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
		fmt.Fprintln(os.Stderr, "SKIP e2e tests:", err)
		os.Exit(0)
	}
	if _, err := exec.LookPath("node"); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: the e2e tests run the app under node --watch:", err)
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "aether-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	started := time.Now()

	fetcherBin = filepath.Join(dir, "fetcher")
	build := exec.Command("go", "build", "-o", fetcherBin, "./cmd/fetcher")
	build.Dir = controlplane.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/fetcher: %v\n%s", err, out)
		return 1
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
	fmt.Fprintf(os.Stderr, "fetcher built, control plane and webhook up in %s\n", time.Since(started).Round(time.Millisecond))
	return m.Run()
}
