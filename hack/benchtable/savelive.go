package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/pack"
	"github.com/aether-dev/aether-devhot/pkg/store"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
	"github.com/aether-dev/aether-devhot/test/framework/storeserver"
)

const saveNS = "bench-save"

// saveLive measures save → live with `kubectl devhot push --watch`: one
// pod of the sample, the artifact store on loopback (--store), and the
// plugin watching the app's source directory; each save rewrites
// version.json in place, as an editor does, and the latency runs from just
// before the write to the first 5 ms poll that answers the new version.
// It includes the plugin's 100 ms debounce, packing and upload.
func (b *runner) saveLive() error {
	dep, kc, err := b.deploy(saveNS, "hello")
	if err != nil {
		return err
	}
	st, err := b.loopbackStore()
	if err != nil {
		return err
	}
	storeURL := st.URL
	src := filepath.Join(b.dir, "save-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	server, err := os.ReadFile(filepath.Join(b.root, "test", "testdata", "app", "server.js"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "server.js"), server, 0o644); err != nil {
		return err
	}
	save := func(v int) error {
		return os.WriteFile(filepath.Join(src, "version.json"), fmt.Appendf(nil, `{"version":%d}`, v), 0o644)
	}
	if err := save(1); err != nil {
		return err
	}
	// Version 1 as push sends it, a delta release, so that push --watch
	// finds it live already.
	r, err := pack.Delta(src, pack.Options{}, nil)
	if err != nil {
		return err
	}
	// The store takes only what the Deployment asks for: annotate first.
	ref := store.BlobRef{Namespace: saveNS, Deployment: dep.Name, Hex: r.Hex()}
	if _, err := b.annotate(saveNS, dep.Name, r.Digest, storeURL+ref.Path()); err != nil {
		return err
	}
	c := &store.Client{HTTP: http.DefaultClient, Base: storeURL}
	if _, err := c.PutRelease(b.ctx, ref, r.Root, r.Open); err != nil {
		return err
	}
	env, err := st.FetcherEnv(b.cp.Clientset, saveNS, dep.Spec.Template.Spec.ServiceAccountName, b.dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	pod, err := localpod.StartLive(ctx, dep, localpod.Options{
		Name: "hello-save", Namespace: saveNS, Kubeconfig: kc, FetcherBin: b.fetcherBin,
		Dir: filepath.Join(b.dir, "save-pod"), FetcherEnv: env,
	}, "app", 1)
	if err != nil {
		return err
	}
	defer pod.Stop()

	plugin := filepath.Join(b.dir, "kubectl-devhot")
	if err := b.goBuild(plugin, "./cmd/kubectl-devhot"); err != nil {
		return err
	}
	cmd := exec.CommandContext(b.ctx, plugin, "--kubeconfig", b.cp.Kubeconfig, "-n", saveNS,
		"push", dep.Name, src, "--watch", "--store", storeURL, "--timeout", "20s")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = waitLine(lines, "stopped", 5*time.Second)
		_ = cmd.Wait()
	}()
	// Its first push is the tree as it is: version 1, live already.
	if err := waitLine(lines, "deployment.apps/"+dep.Name+" already has", 20*time.Second); err != nil {
		return err
	}
	for v := 2; v < 2+b.cfg.saves; v++ {
		if err := sleep(b.ctx, 300*time.Millisecond); err != nil {
			return err
		}
		t0 := time.Now()
		if err := save(v); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		_, err := pod.WaitVersion(ctx, v)
		cancel()
		if err != nil {
			return fmt.Errorf("version %d: %w", v, err)
		}
		b.res.saveLive = append(b.res.saveLive, time.Since(t0))
		// The plugin's own report of this push; it must not have failed.
		if err := waitLine(lines, "save → live: ", 10*time.Second); err != nil {
			return err
		}
	}
	l := b.res.saveLive
	fmt.Fprintf(os.Stderr, "    %d saves: p50 %v, p95 %v, max %v\n", len(l), bench.Percentile(l, 50).Round(time.Millisecond),
		bench.Percentile(l, 95).Round(time.Millisecond), bench.Percentile(l, 100).Round(time.Millisecond))
	return nil
}

// waitLine reads the plugin's output until a line starts with prefix; a
// "push failed" line, the end of the output or the timeout is an error.
func waitLine(lines <-chan string, prefix string, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return fmt.Errorf("kubectl devhot push --watch ended before %q", prefix)
			}
			if strings.HasPrefix(l, "push failed") {
				return fmt.Errorf("kubectl devhot: %s", l)
			}
			if strings.HasPrefix(l, prefix) {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("kubectl devhot printed no %q line within %s", prefix, timeout)
		}
	}
}

// loopbackStore serves the artifact store (pkg/store, with its access
// control against the control plane) on 127.0.0.1 until the run ends.
func (b *runner) loopbackStore() (*storeserver.Server, error) {
	st, err := storeserver.Start(b.cp.Config, filepath.Join(b.dir, "store"), storeserver.Options{})
	if err != nil {
		return nil, err
	}
	b.cleanup = append(b.cleanup, st.Close)
	return st, nil
}
