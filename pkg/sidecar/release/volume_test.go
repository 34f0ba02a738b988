package release_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
)

// TestFullVolume runs the workspace on a tmpfs that holds 3 releases of
// 1 MiB and a little more. Publishing a 4th must prune first (the review
// saw ENOSPC forever: the prune ran only after a publish). A release that
// does not fit beside the live and the pinned one is a final size_limit,
// one that fits once an older release is gone is retried, and the volume
// is never left full.
func TestFullVolume(t *testing.T) {
	vol, ok := tmpfs(t, "3700k")
	if !ok {
		return
	}
	f := fixtureAt(t, vol, filepath.Join(vol, "ws"))
	mib := func(seed uint64, size int64) annotations.Target {
		a, err := artifact.Incompressible(size, 256<<10, seed)
		if err != nil {
			t.Fatal(err)
		}
		return f.target(fmt.Sprintf("/%d.tgz", seed), a.Data)
	}
	lim := release.Limits{MaxBytes: 4 << 20}
	var live []annotations.Target
	for i := range 5 {
		tg := mib(uint64(i+1), 1<<20)
		if _, err := f.apply(tg, lim); err != nil {
			t.Fatalf("release %d of 1 MiB: %v", i+1, err)
		}
		live = append(live, tg)
	}
	f.checkClean()
	if n := len(f.releases()); n != sidecar.KeepReleases {
		t.Errorf("%d releases kept, want %d", n, sidecar.KeepReleases)
	}

	// 2 MiB beside the live and the pinned release: 4 MiB do not fit.
	f.ws.Pin(live[3].Digest)
	big := mib(100, 2<<20)
	_, err := f.apply(big, lim)
	t.Logf("beside the live and the pinned one: %v", err)
	if release.ReasonOf(err) != refresh.ReasonSizeLimit || !release.IsFinal(err) || !strings.Contains(err.Error(), "sizeLimit") {
		t.Errorf("error %v, want a final size_limit that names the volume's sizeLimit", err)
	}
	f.checkClean()
	if got := f.releases(); len(got) != 2 || !f.ws.Has(live[3].Digest) || f.ws.Current() != live[4].Digest {
		t.Errorf("releases %v, want only the live and the pinned one", got)
	}

	// Unpinned, the other release can go: the first try removes it, the
	// next one fits.
	f.ws.Pin("")
	_, err = f.apply(big, lim)
	t.Logf("beside the live and another one: %v", err)
	if release.ReasonOf(err) != refresh.ReasonSizeLimit || release.IsFinal(err) {
		t.Errorf("error %v, want a size_limit to retry", err)
	}
	if _, err := f.apply(big, lim); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	f.checkClean()
	if got := f.ws.Current(); got != big.Digest {
		t.Errorf("Current() = %q, want the big release", got)
	}
}

// releases lists releases/ once the removals have ended.
func (f *fixture) releases() []string {
	f.t.Helper()
	f.wait()
	entries, err := os.ReadDir(filepath.Join(f.dir, sidecar.ReleasesDir))
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
