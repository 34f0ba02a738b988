package node_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// TestReload publishes 20 versions to a real `node --watch`, 50 ms to 1 s
// apart, and checks after each that the new version answers, that the app
// restarted exactly once, and that it was unreachable only briefly.
func TestReload(t *testing.T) {
	h := newHarness(t)
	gaps := h.measureGaps()
	rng := rand.New(rand.NewPCG(7, 7))
	var lat, live []time.Duration
	const versions = 20
	for v := 2; v <= versions+1; v++ {
		time.Sleep(50*time.Millisecond + time.Duration(rng.IntN(950))*time.Millisecond)
		if got := h.starts(); got != v-1 {
			t.Fatalf("before version %d: %d starts, want %d (a restart nobody asked for)", v, got, v-1)
		}
		tg := h.artifact(v)
		start := time.Now()
		if _, err := h.apply(tg); err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		took, err := waitLoaded(ctx, h.ws, tg.Digest, release.DefaultRetouch)
		cancel()
		if err != nil {
			t.Fatalf("version %d not loaded: %v", v, err)
		}
		a, err := h.waitVersion(v, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		live = append(live, took)
		if a.Starts != v {
			t.Fatalf("version %d answers after %d starts, want %d: one restart per version", v, a.Starts, v)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if got := h.starts(); got != versions+1 {
		t.Errorf("after the last version: %d starts, want %d", got, versions+1)
	}

	// A bad artifact changes nothing: no restart, the old version answers.
	bad := h.artifact(99)
	bad.Digest, bad.Hex = "sha256:"+strings.Repeat("0", 64), strings.Repeat("0", 64)
	if _, err := h.apply(bad); release.ReasonOf(err) != refresh.ReasonChecksum {
		t.Fatalf("bad artifact: error %v, want reason checksum", err)
	}
	time.Sleep(500 * time.Millisecond)
	if a, err := h.get(); err != nil || a.Version != versions+1 || a.Starts != versions+1 {
		t.Errorf("after a failed apply: %+v, %v; want version %d after %d starts", a, err, versions+1, versions+1)
	}

	maxGap, n, refused := gaps.finish()
	t.Logf("apply -> answering: p50 %v, p95 %v, max %v; loaded record: p50 %v",
		percentile(lat, 50), percentile(lat, 95), percentile(lat, 100), percentile(live, 50))
	t.Logf("unavailable: %d gaps, longest %v, %d refused polls", n, maxGap, refused)
	if maxGap > 2*time.Second {
		t.Errorf("longest gap %v, want under 2s", maxGap)
	}
}

// BenchmarkReload measures publish latency, from Apply to the new version
// answering, over at least 30 reloads whatever b.N is; ns/op is the mean.
func BenchmarkReload(b *testing.B) {
	h := newHarness(b)
	n := max(b.N, 30)
	var lat, applying []time.Duration
	var total time.Duration
	b.ResetTimer()
	for i := range n {
		v := i + 2
		tg := h.artifact(v)
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		if _, err := h.apply(tg); err != nil {
			b.Fatal(err)
		}
		applying = append(applying, time.Since(start))
		waited := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := waitLoaded(ctx, h.ws, tg.Digest, release.DefaultRetouch)
			waited <- err
		}()
		if _, err := h.waitVersion(v, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		lat = append(lat, d)
		total += d
		if err := <-waited; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := h.starts(); got != n+1 {
		b.Errorf("%d starts for %d reloads, want exactly one each", got-1, n)
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(n), "ns/op")
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 95)), "p95-ms")
	b.ReportMetric(ms(percentile(lat, 100)), "max-ms")
	// Our share: download, verify, extract, publish; the rest is Node.
	b.ReportMetric(ms(percentile(applying, 50)), "apply-p50-ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// TestSlowStart publishes an app that takes longer to load than the
// re-touch interval: the re-touch must not restart it again mid-load.
func TestSlowStart(t *testing.T) {
	h := newHarness(t)
	const retouch = 300 * time.Millisecond
	tg := h.slowArtifact(2, 3*retouch)
	if _, err := h.apply(tg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := waitLoaded(ctx, h.ws, tg.Digest, retouch); err != nil {
		t.Fatalf("not loaded: %v", err)
	}
	if _, err := h.waitVersion(2, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * retouch)
	if got := h.starts(); got != 2 {
		t.Errorf("%d starts, want 2: the slow start was restarted", got)
	}
}

// TestDeltaReload publishes delta releases to a real `node --watch`: each
// one version.json apart from the last, so that every other file is taken
// from the release the app runs: the files the app loaded copied, the one
// it never loads hard-linked. The app restarts exactly once per release,
// never while one is assembled or an old one is removed, and a delta
// release that fails (a file whose bytes lie) restarts nothing: the
// fetcher never adds or removes a link of an inode that node --watch
// watches, which would restart it.
func TestDeltaReload(t *testing.T) {
	h := newHarness(t)
	for v := 2; v <= 6; v++ {
		res, err := h.apply(h.deltaArtifact(v, ""))
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if want := len(h.files) + 1; v > 2 && (res.Source != refresh.SourceDelta || res.Reused != want) {
			t.Errorf("version %d: source %s, %d files reused; want delta, %d", v, res.Source, res.Reused, want)
		}
		if v > 2 {
			for name, want := range map[string]uint64{"server.js": 1, "assets/readme.txt": 3} {
				fi, err := os.Stat(filepath.Join(h.ws.Dir(), "releases", res.Digest[len("sha256:"):], name))
				if err != nil {
					t.Fatal(err)
				}
				if n := fi.Sys().(*syscall.Stat_t).Nlink; n != min(want, uint64(v-1)) {
					t.Errorf("version %d: %s has %d links, want %d (copied if loaded, else linked)", v, name, n, min(want, uint64(v-1)))
				}
			}
		}
		a, err := h.waitVersion(v, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond)
		if got := h.starts(); a.Starts != v || got != v {
			t.Fatalf("version %d answers after %d starts, %d now; want %d: one restart per release", v, a.Starts, got, v)
		}
	}
	if _, err := h.apply(h.deltaArtifact(7, "version.json")); release.ReasonOf(err) != refresh.ReasonChecksum {
		t.Fatalf("a delta release with a lying file: %v, want reason checksum", err)
	}
	time.Sleep(500 * time.Millisecond)
	if a, err := h.get(); err != nil || a.Version != 6 || a.Starts != 6 {
		t.Errorf("after a failed delta release: %+v, %v; want version 6 after 6 starts", a, err)
	}
}
