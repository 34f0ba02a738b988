package e2e

import (
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// recoveryCeiling is issue 4's bound from the API server's return to the
// new code answering.
const recoveryCeiling = 5 * time.Second

// A digest patched while the fetcher cannot reach the API server goes live
// soon after it can again.
func TestRecoveryAfterAPIOutage(t *testing.T) {
	s := newSample(t)
	api, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, api.Host)
	kubeconfig := filepath.Join(s.dir, "via-proxy.kubeconfig")
	viaProxy(t, s.kubeconfig, kubeconfig, proxy)

	s.push(1)
	pod := s.startPod(kubeconfig, 1)

	proxy.Cut()
	cut := time.Now()
	// The fetcher has noticed once it tries to reconnect and is refused.
	wait.For(t, "the fetcher to try to reconnect", 10*time.Second, func() error {
		if proxy.refused.Load() == 0 {
			return fmt.Errorf("no connection attempt")
		}
		return nil
	})
	s.push(2)
	time.Sleep(500 * time.Millisecond)
	if a := answer(t, pod); a.Version != 1 {
		t.Fatalf("version %d answering during the outage: the fetcher was not cut off", a.Version)
	}

	proxy.Restore()
	restored := time.Now()
	t.Logf("outage: %d ms, %d connection attempts refused", restored.Sub(cut).Milliseconds(), proxy.refused.Load())
	_, took := waitVersion(t, pod, 2, restored, recoveryCeiling)
	t.Logf("recovery: version 2 answering %d ms after the API server came back", took.Milliseconds())
}
