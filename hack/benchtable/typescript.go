package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/apps"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
)

const (
	tsServiceName    = "ts-api"
	tsServiceMessage = "src/message.ts"
	tsServiceNS      = "bench-typescript"
)

// typeScript is save → live for the TypeScript service on real pods:
// ts-api (tsc in its image's build stage, node dist/server.js) with 2
// replicas, enabled by `kubectl devhot enable` alone; its source, with its
// devDependencies from `npm ci`, under `kubectl devhot push --watch`,
// which runs its devhot.yaml's watchBuild (tsc --watch) and pushes dist/
// on each change. Each save rewrites src/message.ts, and the latency runs
// from just before the write to when both pods answer it.
func (b *runner) typeScript(c *cluster.Cluster) error {
	e, err := b.enableService(c, tsServiceNS, tsServiceName)
	if err != nil {
		return err
	}
	defer e.cleanup()
	devhot, pods := e.devhot, e.pods
	src := filepath.Join(b.dir, "ts-src")
	if err := apps.Copy(tsServiceName, src); err != nil {
		return err
	}
	npm := exec.CommandContext(b.ctx, "npm", "ci", "--no-audit", "--no-fund")
	npm.Dir = src
	if out, err := npm.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci: %v\n%s", err, out)
	}
	save := func(msg string) error {
		return os.WriteFile(filepath.Join(src, tsServiceMessage), fmt.Appendf(nil, "export const message: string = %q;\n", msg), 0o644)
	}
	if err := save("save 0"); err != nil {
		return err
	}
	cmd := devhot("push", tsServiceName, src, "--watch", "--timeout", "30s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	lines, err := startLines(cmd)
	if err != nil {
		return err
	}
	go func() {
		// tsc's and the pushes' lines: drained, not read.
		for range lines {
		}
	}()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		_ = cmd.Wait()
	}()
	if err := allAnswer(b.ctx, pods, "save 0", 60*time.Second); err != nil {
		return err
	}
	if b.res.tsSave, err = b.timedSaves(b.cfg.tsSaves, 500*time.Millisecond, pods, save, nil); err != nil {
		return err
	}
	l := b.res.tsSave
	fmt.Fprintf(os.Stderr, "    %d saves of a .ts file on 2 real pods: p50 %v, p95 %v\n", len(l),
		bench.Percentile(l, 50).Round(time.Millisecond), bench.Percentile(l, 95).Round(time.Millisecond))
	return nil
}
