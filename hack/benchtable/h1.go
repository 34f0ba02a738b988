package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
)

const h1NS = "bench-h1"

// pollInterval is the seed's design: a GET every 5 s.
const pollInterval = 5 * time.Second

// h1 measures annotate → new version answering: one pod of the sample
// (fetcher plus the app under real node --watch) in watch mode, then a
// fresh one in poll mode; for each reload it serves a new version, patches
// the annotations and polls the app every 5 ms until it answers it.
//
// Watch mode waits 200–400 ms between reloads. Poll mode waits a random
// 0–5 s: a reload answered just after a poll would otherwise phase-lock
// the next annotation to the poll ticker.
func (b *runner) h1() error {
	dep, kc, err := b.deploy(h1NS, "hello")
	if err != nil {
		return err
	}
	appDir := filepath.Join(b.root, "test", "testdata", "app")
	v := 1
	a, err := artifact.App(appDir, v)
	if err != nil {
		return err
	}
	if _, err := b.push(h1NS, dep.Name, a, "hello-v1.tar.gz"); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	modes := []struct {
		name  string
		n     int
		gap   func() time.Duration
		limit time.Duration
	}{
		{"watch", b.cfg.reloads, func() time.Duration {
			return 200*time.Millisecond + time.Duration(rng.Int64N(int64(200*time.Millisecond)))
		}, 10 * time.Second},
		{"poll", b.cfg.pollReloads, func() time.Duration { return time.Duration(rng.Int64N(int64(pollInterval))) }, 10*time.Second + pollInterval},
	}
	for _, m := range modes {
		pod, err := localpod.Start(dep, localpod.Options{
			Name: "hello-" + m.name, Namespace: h1NS, Kubeconfig: kc, FetcherBin: b.fetcherBin,
			Dir: filepath.Join(b.dir, "h1-"+m.name),
			FetcherEnv: map[string]string{
				sidecar.EnvFetchMode:        m.name,
				sidecar.EnvFetchIntervalSec: fmt.Sprint(int(pollInterval / time.Second)),
			},
		})
		if err != nil {
			return err
		}
		lat, err := b.reloads(pod, dep, appDir, &v, m.n, m.gap, m.limit)
		pod.Stop()
		b.res.h1[m.name] = lat
		if err != nil {
			return fmt.Errorf("%s mode: %w", m.name, err)
		}
		fmt.Fprintf(os.Stderr, "    %s: %d reloads, p50 %v, p95 %v, max %v\n", m.name, len(lat),
			bench.Percentile(lat, 50).Round(time.Millisecond), bench.Percentile(lat, 95).Round(time.Millisecond),
			bench.Percentile(lat, 100).Round(time.Millisecond))
	}
	return nil
}

// reloads starts the pod's app once its fetcher is ready, then pushes n
// new versions after *v and returns each one's latency.
func (b *runner) reloads(pod *localpod.Pod, dep *appsv1.Deployment, appDir string, v *int, n int, gap func() time.Duration, limit time.Duration) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := pod.WaitReady(ctx); err != nil {
		return nil, err
	}
	if err := pod.StartApp(dep, "app"); err != nil {
		return nil, err
	}
	if _, err := pod.WaitVersion(ctx, *v); err != nil {
		return nil, err
	}
	var lat []time.Duration
	for range n {
		if err := sleep(b.ctx, gap()); err != nil {
			return lat, err
		}
		*v++
		a, err := artifact.App(appDir, *v)
		if err != nil {
			return lat, err
		}
		t0, err := b.push(h1NS, dep.Name, a, fmt.Sprintf("hello-v%d.tar.gz", *v))
		if err != nil {
			return lat, err
		}
		ctx, cancel := context.WithTimeout(b.ctx, limit)
		_, err = pod.WaitVersion(ctx, *v)
		cancel()
		if err != nil {
			return lat, err
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}
