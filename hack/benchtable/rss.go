package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
)

const rssNS = "bench-rss"

// rssResult is the fetcher's memory, idle and while applying the big
// artifact.
type rssResult struct {
	idle bench.Memory
	// sampled is the highest VmRSS seen every 10 ms during the apply;
	// hwm is VmHWM after it, the kernel's own peak.
	sampled, hwm int64
	bigBytes     int64
	gzBytes      int
	apply        time.Duration
}

// rss runs one fetcher (no app) on a small release, reads its idle RSS,
// then annotates a cfg.bigMiB MiB incompressible artifact served on
// loopback and samples its RSS until REFRESH_OK for it.
func (b *runner) rss() error {
	dep, kc, err := b.deploy(rssNS, "big")
	if err != nil {
		return err
	}
	small, err := artifact.App(filepath.Join(b.root, "test", "testdata", "app"), 1)
	if err != nil {
		return err
	}
	if _, err := b.push(rssNS, dep.Name, small, "big-v1.tar.gz"); err != nil {
		return err
	}
	size := b.cfg.bigMiB << 20
	pod, err := localpod.Start(dep, localpod.Options{
		Name: "big-0", Namespace: rssNS, Kubeconfig: kc, FetcherBin: b.fetcherBin, Dir: filepath.Join(b.dir, "rss"),
		FetcherEnv: map[string]string{sidecar.EnvMaxArtifactBytes: fmt.Sprint(2 * size)},
	})
	if err != nil {
		return err
	}
	defer pod.Stop()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := pod.WaitReady(ctx); err != nil {
		return err
	}
	if err := sleep(b.ctx, 3*time.Second); err != nil {
		return err
	}
	pid := pod.FetcherPID()
	r := rssResult{bigBytes: size}
	if r.idle, err = bench.ReadMemory(pid); err != nil {
		return err
	}

	big, err := artifact.Incompressible(size, 1<<20, 1)
	if err != nil {
		return err
	}
	r.gzBytes = len(big.Data)
	t0, err := b.push(rssNS, dep.Name, big, "big.tar.gz")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if m, err := bench.ReadMemory(pid); err == nil {
			r.sampled = max(r.sampled, m.RSS)
		}
		done := slices.ContainsFunc(pod.Refreshes(refresh.MarkerOK), func(r refresh.Record) bool { return r.Digest == big.Digest })
		if done {
			r.apply = time.Since(t0)
			break
		}
		if len(pod.Refreshes(refresh.MarkerFail)) > 0 {
			f, _ := pod.Logs()
			return fmt.Errorf("the fetcher failed on the big artifact (log: %s)", f)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no REFRESH_OK for the big artifact within 2m")
		}
		if err := sleep(b.ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	m, err := bench.ReadMemory(pid)
	if err != nil {
		return err
	}
	r.hwm = m.HWM
	b.res.rss = &r
	fmt.Fprintf(os.Stderr, "    idle %s; applying %s: sampled max %s, VmHWM %s, %s\n", bench.MiB(r.idle.RSS),
		bench.MiB(size), bench.MiB(r.sampled), bench.MiB(r.hwm), r.apply.Round(time.Millisecond))
	return nil
}
