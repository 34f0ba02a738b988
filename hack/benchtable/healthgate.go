package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/apps"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
)

// crashes measures the health gate on the real service's 2 pods: each of
// crashPushes pushes a release whose message module throws at load (each
// a new digest). For each it times, from just before `kubectl devhot push`
// starts, its exit (which must be 1, with the app's error in its output),
// and the moment both pods answer good, the message of the last good
// release, from a new process (the one the rollback started).
func (b *runner) crashes(devhot func(args ...string) *exec.Cmd, src string, pods []apps.Pod, good string) error {
	for i := 1; i <= b.cfg.crashPushes; i++ {
		before := map[string]int{}
		for _, p := range pods {
			a, err := p.Answer()
			if err != nil || a.Message != good {
				return fmt.Errorf("before crash %d: pod %s answers %+v, %v; want %q", i, p.Name, a, err, good)
			}
			before[p.Name] = a.PID
		}
		body := fmt.Sprintf("module.exports = 'never served';\nthrow new Error('crash %d: the config has no port');\n", i)
		if err := os.WriteFile(src+"/"+serviceMessage, []byte(body), 0o644); err != nil {
			return err
		}
		t0 := time.Now()
		type result struct {
			took time.Duration
			err  error
		}
		restored := make(chan result, 1)
		go func() {
			took, err := answeredByNewProcess(b.ctx, pods, good, before, 30*time.Second)
			restored <- result{took, err}
		}()
		out, err := devhot("push", service, src, "--timeout", "30s").CombinedOutput()
		exited := time.Since(t0)
		if err == nil || !strings.Contains(string(out), fmt.Sprintf("crash %d: the config has no port", i)) || !strings.Contains(string(out), "rolled back to sha256:") {
			return fmt.Errorf("crash %d: push exited %v, want 1 with the error and the rollback:\n%s", i, err, out)
		}
		r := <-restored
		if r.err != nil {
			return fmt.Errorf("crash %d: %w", i, r.err)
		}
		b.res.crashRestore = append(b.res.crashRestore, r.took)
		b.res.crashExit = append(b.res.crashExit, exited)
	}
	if err := writeMessage(src, good); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "    %d crashing pushes: old code answering again p50 %v, push exits 1 p50 %v\n", len(b.res.crashRestore),
		bench.Percentile(b.res.crashRestore, 50).Round(time.Millisecond), bench.Percentile(b.res.crashExit, 50).Round(time.Millisecond))
	return nil
}

// answeredByNewProcess polls every pod every 5 ms until each answers msg
// from a pid other than before's, and returns when the later of them did,
// from the call.
func answeredByNewProcess(ctx context.Context, pods []apps.Pod, msg string, before map[string]int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	done := map[string]bool{}
	for time.Now().Before(deadline) {
		for _, p := range pods {
			if done[p.Name] {
				continue
			}
			if a, err := p.Answer(); err == nil && a.Message == msg && a.PID != before[p.Name] {
				done[p.Name] = true
			}
		}
		if len(done) == len(pods) {
			return time.Since(start), nil
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%d of %d pods answered %q from a new process within %s", len(done), len(pods), msg, timeout)
}

// loadInterval spaces each load client's requests.
const loadInterval = 10 * time.Millisecond

// reloadsUnderLoad counts failed requests while the real service reloads:
// one client per pod sends GET / every loadInterval on a new connection
// (1 s timeout), first for a quiet window with no reload (the baseline),
// then through loadReloads good pushes, each waited for by push.
func (b *runner) reloadsUnderLoad(devhot func(args ...string) *exec.Cmd, src string, pods []apps.Pod) error {
	quiet := newLoad(pods)
	if err := sleep(b.ctx, b.cfg.quietWindow); err != nil {
		return err
	}
	b.res.quietLoad = quiet.stop()

	l := newLoad(pods)
	for i := 1; i <= b.cfg.loadReloads; i++ {
		if err := writeMessage(src, fmt.Sprintf("reload %d under load", i)); err != nil {
			l.stop()
			return err
		}
		if out, err := devhot("push", service, src, "--timeout", "30s").CombinedOutput(); err != nil {
			l.stop()
			return fmt.Errorf("reload %d: %v\n%s", i, err, out)
		}
		if err := allAnswer(b.ctx, pods, fmt.Sprintf("reload %d under load", i), 20*time.Second); err != nil {
			l.stop()
			return err
		}
	}
	b.res.reloadLoad = l.stop()
	b.res.reloads = b.cfg.loadReloads
	fmt.Fprintf(os.Stderr, "    quiet %s: %d of %d requests failed; %d reloads: %d of %d failed\n", b.cfg.quietWindow,
		b.res.quietLoad.failed, b.res.quietLoad.total, b.cfg.loadReloads, b.res.reloadLoad.failed, b.res.reloadLoad.total)
	return nil
}

// loadCount is what a load saw.
type loadCount struct {
	total, failed int64
	took          time.Duration
}

// load is the steady request stream of reloadsUnderLoad.
type load struct {
	total, failed atomic.Int64
	start         time.Time
	done          chan struct{}
	wg            sync.WaitGroup
}

func newLoad(pods []apps.Pod) *load {
	l := &load{start: time.Now(), done: make(chan struct{})}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, p := range pods {
		url := fmt.Sprintf("http://%s:%d/", p.IP, p.Ports["http"])
		l.wg.Go(func() {
			tick := time.NewTicker(loadInterval)
			defer tick.Stop()
			for {
				select {
				case <-l.done:
					return
				case <-tick.C:
				}
				l.total.Add(1)
				resp, err := client.Get(url)
				if err != nil {
					l.failed.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					l.failed.Add(1)
				}
			}
		})
	}
	return l
}

func (l *load) stop() loadCount {
	close(l.done)
	l.wg.Wait()
	return loadCount{total: l.total.Load(), failed: l.failed.Load(), took: time.Since(l.start)}
}
