package fetcher

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// TestReleaseZeroReadiness: /readyz is what lets the app start. Without
// release zero (the replaced initContainer's code is gone) it waits for a
// release; with it (AETHER_APP_DIR) the app starts on its image's code as
// soon as nothing better is coming: no digest, or the first try of one has
// ended either way, or the Deployment cannot be read for the grace period.
func TestReleaseZeroReadiness(t *testing.T) {
	srv := newArtifactServer(t)
	good := app(t, "v1")
	goodURL := srv.serve("/v1.tar.gz", good)
	for _, c := range []struct {
		name     string
		appDir   string
		ann      map[string]string
		apiDown  bool
		want     int    // /readyz once settled
		wantBody string // in /readyz's body
	}{
		{name: "no release zero, no digest", ann: nil, want: http.StatusServiceUnavailable, wantBody: "no release is live yet"},
		{name: "no release zero, digest fails", ann: target(digestOf(good), srv.URL+"/missing.tar.gz"), want: http.StatusServiceUnavailable},
		{name: "release zero, no digest", appDir: "/app", ann: nil, want: http.StatusOK, wantBody: "release zero"},
		{name: "release zero, digest fails", appDir: "/app", ann: target(digestOf(good), srv.URL+"/missing.tar.gz"), want: http.StatusOK, wantBody: "release zero"},
		{name: "release zero, digest live", appDir: ".", ann: target(digestOf(good), goodURL), want: http.StatusOK, wantBody: "a release is live"},
		{name: "release zero, API down", appDir: "/app", apiDown: true, want: http.StatusOK, wantBody: "release zero"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.ann, func(cfg *Config) { cfg.AppDir = c.appDir })
			if c.apiDown {
				fail := func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("connection refused")
				}
				h.client.PrependReactor("list", "deployments", fail)
				h.client.PrependWatchReactor("deployments", func(k8stesting.Action) (bool, watch.Interface, error) {
					return true, nil, errors.New("connection refused")
				})
			}
			f := h.open()
			f.zeroGrace = 300 * time.Millisecond
			if code, _ := get(t, f.handler(), "/readyz"); code != http.StatusServiceUnavailable {
				t.Fatalf("/readyz before the fetcher ran: %d", code)
			}
			h.run()
			deadline := time.Now().Add(5 * time.Second)
			code, body := 0, ""
			for time.Now().Before(deadline) {
				if code, body = get(t, f.handler(), "/readyz"); code == c.want && strings.Contains(body, c.wantBody) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if c.want != http.StatusOK {
				// Give it time to become ready wrongly.
				time.Sleep(500 * time.Millisecond)
				code, body = get(t, f.handler(), "/readyz")
			}
			if code != c.want || !strings.Contains(body, c.wantBody) {
				t.Fatalf("/readyz = %d %q, want %d with %q", code, body, c.want, c.wantBody)
			}
			if c.appDir == "/app" {
				if target, err := os.Readlink(filepath.Join(h.cfg.Workspace, sidecar.ImageModules)); err != nil || target != "/app/node_modules" {
					t.Errorf("%s -> %q, %v; want /app/node_modules", sidecar.ImageModules, target, err)
				}
			}
		})
	}
}
