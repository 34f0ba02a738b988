package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// An artifact that does not match its digest is refused: REFRESH_FAIL
// reason=checksum, a RefreshFailed Event, and the old code keeps answering.
func TestChecksumMismatchKeepsOldVersion(t *testing.T) {
	s := newSample(t)
	s.push(1)
	pod := s.startPod("", 1)
	before := answer(t, pod)

	// Version 2's bytes under version 3's digest.
	_, url := s.serve(2)
	wrong := s.build(3).Digest
	s.annotate(annotations.Digest+"="+wrong, annotations.ArtifactURL+"="+url)

	wait.For(t, "REFRESH_FAIL reason=checksum", 10*time.Second, func() error {
		fails := pod.Refreshes(refresh.MarkerFail)
		for _, r := range fails {
			if r.Reason == refresh.ReasonChecksum && r.Digest == wrong {
				t.Logf("fetcher: %s", r)
				return nil
			}
		}
		return fmt.Errorf("fetcher log has %v", fails)
	})
	wait.For(t, "a RefreshFailed Event on the Deployment", 10*time.Second, func() error {
		evs, err := cp.Clientset.EventsV1().Events(s.ns).List(context.Background(), metav1.ListOptions{FieldSelector: refresh.EventSelector(deployment)})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if r, _, ok := refresh.FromEvent(&e); ok && r.Marker == refresh.MarkerFail && r.Reason == refresh.ReasonChecksum &&
				r.Digest == wrong && e.Type == corev1.EventTypeWarning {
				t.Logf("event: %s %s: %s", e.Type, e.Reason, e.Note)
				return nil
			}
		}
		return fmt.Errorf("%d events, none RefreshFailed", len(evs.Items))
	})
	steady(t, pod, before, time.Second)
	if ok := pod.Refreshes(refresh.MarkerOK); len(ok) != 1 {
		t.Errorf("REFRESH_OK lines %v, want only version 1's", ok)
	}
}
