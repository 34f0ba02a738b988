package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
)

const loadNS = "bench-idle"

// loadResult is one mode's API load: requests in the window by verb, and
// watches open at its end.
type loadResult struct {
	fetchers    int
	window      time.Duration
	total       float64
	byVerb      map[string]float64
	openWatches float64
	// rss is each idle fetcher's VmRSS at the end of the window.
	rss []float64
}

// perFetcherMinute is requests per fetcher per minute.
func (l loadResult) perFetcherMinute() float64 {
	return l.total / float64(l.fetchers) / l.window.Minutes()
}

// apiLoad runs cfg.fetchers idle fetchers (fetcher processes only, as the
// replicas of one Deployment) in watch mode, then in poll mode with a 5 s
// interval, and counts their requests in the API server's own
// apiserver_request_total over a window that opens cfg.warmup after all
// are ready (their start-up LIST, WATCH and download are not counted).
func (b *runner) apiLoad() error {
	dep, kc, err := b.deploy(loadNS, "idle")
	if err != nil {
		return err
	}
	a, err := artifact.App(filepath.Join(b.root, "test", "testdata", "app"), 1)
	if err != nil {
		return err
	}
	if _, err := b.push(loadNS, dep.Name, a, "idle-v1.tar.gz"); err != nil {
		return err
	}
	for _, mode := range []string{"watch", "poll"} {
		var pods []*localpod.Pod
		stopAll := func() {
			var wg sync.WaitGroup
			for _, p := range pods {
				wg.Go(p.Stop)
			}
			wg.Wait()
		}
		res, err := func() (loadResult, error) {
			for i := range b.cfg.fetchers {
				p, err := localpod.Start(dep, localpod.Options{
					Name: fmt.Sprintf("idle-%s-%d", mode, i), Namespace: loadNS, Kubeconfig: kc, FetcherBin: b.fetcherBin,
					Dir: filepath.Join(b.dir, "idle", fmt.Sprintf("%s-%d", mode, i)),
					FetcherEnv: map[string]string{
						sidecar.EnvFetchMode:        mode,
						sidecar.EnvFetchIntervalSec: fmt.Sprint(int(pollInterval / time.Second)),
					},
				})
				if err != nil {
					return loadResult{}, err
				}
				pods = append(pods, p)
			}
			ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
			defer cancel()
			for _, p := range pods {
				if err := p.WaitReady(ctx); err != nil {
					return loadResult{}, err
				}
			}
			return b.countRequests(pods)
		}()
		stopAll()
		if err != nil {
			return fmt.Errorf("%s mode: %w", mode, err)
		}
		b.res.load[mode] = res
		fmt.Fprintf(os.Stderr, "    %s: %.0f requests in %s from %d fetchers (%s), %.0f watches open: %.3f req/min per fetcher\n",
			mode, res.total, res.window, res.fetchers, verbs(res.byVerb), res.openWatches, res.perFetcherMinute())
	}
	return nil
}

// countRequests waits cfg.warmup, then counts the fetchers' requests over
// cfg.window, and reads their RSS.
func (b *runner) countRequests(pods []*localpod.Pod) (loadResult, error) {
	if err := sleep(b.ctx, b.cfg.warmup); err != nil {
		return loadResult{}, err
	}
	m0, err := b.scrape()
	if err != nil {
		return loadResult{}, err
	}
	t0 := time.Now()
	if err := sleep(b.ctx, b.cfg.window); err != nil {
		return loadResult{}, err
	}
	m1, err := b.scrape()
	if err != nil {
		return loadResult{}, err
	}
	r := loadResult{fetchers: len(pods), window: time.Since(t0)}
	before, beforeVerb := bench.Sum(m0.requests, fetcherRequest, "verb")
	after, afterVerb := bench.Sum(m1.requests, fetcherRequest, "verb")
	r.total = after - before
	r.byVerb = map[string]float64{}
	for v, n := range afterVerb {
		if d := n - beforeVerb[v]; d > 0 {
			r.byVerb[v] = d
		}
	}
	r.openWatches, _ = bench.Sum(m1.longRunning, func(l map[string]string) bool {
		return fetcherRequest(l) && l["verb"] == "WATCH"
	}, "")
	for _, p := range pods {
		if m, err := bench.ReadMemory(p.FetcherPID()); err == nil {
			r.rss = append(r.rss, float64(m.RSS))
		}
	}
	return r, nil
}

// verbs formats requests by verb, e.g. "GET 240".
func verbs(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	var out []string
	for v, n := range m {
		out = append(out, fmt.Sprintf("%s %.0f", v, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
