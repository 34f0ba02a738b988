package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// Three pods of one Deployment, each with its own fetcher and workspace,
// all converge on the new digest.
func TestScaleOutConverges(t *testing.T) {
	const replicas = 3
	s := newSample(t)
	s.push(1)
	for range replicas {
		s.startPod("", 1)
	}

	digest, sent := s.push(2)
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	took := make([]time.Duration, replicas)
	for i, pod := range s.pods {
		wg.Go(func() {
			_, took[i], errs[i] = waitFor(pod, 2, sent, h1Ceiling)
		})
	}
	wg.Wait()
	for i, pod := range s.pods {
		if errs[i] != nil {
			t.Errorf("%s: %v", pod.Name, errs[i])
			continue
		}
		t.Logf("%s: version 2 answering after %d ms", pod.Name, took[i].Milliseconds())
		if ok := pod.Refreshes(refresh.MarkerOK); len(ok) == 0 || ok[len(ok)-1].Digest != digest {
			t.Errorf("%s: last REFRESH_OK is not for %s: %q", pod.Name, digest, ok)
		}
	}
}
