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

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/pack"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
	"github.com/aether-dev/aether-devhot/test/framework/apps"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
)

// service is the realistic app the real-service figures use: express with
// its dependencies in the image (test/testdata/apps/shop-api).
const (
	service        = "shop-api"
	serviceEntry   = "src/server.js"
	serviceMessage = "src/message.js"
	serviceNS      = "bench-real-service"
)

// startTime measures the app's start, process start → first answer of
// /healthz, three ways, alternating, in rounds: `node src/server.js` in
// the app's directory as the image runs it; under dev-hot before any push
// (node --watch boot.cjs, release zero: the image's code); and under
// dev-hot on a pushed release of the same code without node_modules, which
// resolves the image's through the workspace's link. The app's directory
// gets its dependencies from its lockfile (npm ci, as its Dockerfile does).
func (b *runner) startTime() error {
	appDir := filepath.Join(b.dir, "start-app")
	if err := apps.Copy(service, appDir); err != nil {
		return err
	}
	npm := exec.CommandContext(b.ctx, "npm", "ci", "--omit=dev", "--no-audit", "--no-fund")
	npm.Dir = appDir
	if out, err := npm.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci: %v\n%s", err, out)
	}
	zero, err := release.Open(filepath.Join(b.dir, "start-zero"))
	if err != nil {
		return err
	}
	pushed, err := release.Open(filepath.Join(b.dir, "start-release"))
	if err != nil {
		return err
	}
	if err := pushed.UseImageModules(appDir); err != nil {
		return err
	}
	// What kubectl devhot push would upload: the source, no node_modules.
	a, err := pack.Dir(appDir, pack.Options{})
	if err != nil {
		return err
	}
	if err := b.publish(pushed, a); err != nil {
		return err
	}
	port := 18460
	runs := []struct {
		res  *[]time.Duration
		argv []string
		env  []string
	}{
		{&b.res.startPlain, []string{"node", serviceEntry}, nil},
		{&b.res.startZero, []string{"node", "--watch", filepath.Join(zero.Dir(), sidecar.BootFile)},
			[]string{sidecar.EnvEntry + "=" + serviceEntry, sidecar.EnvAppDir + "=" + appDir}},
		{&b.res.startRelease, []string{"node", "--watch", filepath.Join(pushed.Dir(), sidecar.BootFile)},
			[]string{sidecar.EnvEntry + "=" + serviceEntry, sidecar.EnvAppDir + "=" + appDir}},
	}
	for round := 0; round < b.cfg.starts; round++ {
		for _, r := range runs {
			d, err := timeStart(b.ctx, appDir, r.argv, append(r.env, fmt.Sprintf("PORT=%d", port)), port)
			if err != nil {
				return fmt.Errorf("%s: %w", strings.Join(r.argv, " "), err)
			}
			*r.res = append(*r.res, d)
		}
	}
	fmt.Fprintf(os.Stderr, "    %d rounds: plain p50 %v, release zero p50 %v, pushed release p50 %v\n", b.cfg.starts,
		bench.Percentile(b.res.startPlain, 50).Round(time.Millisecond), bench.Percentile(b.res.startZero, 50).Round(time.Millisecond),
		bench.Percentile(b.res.startRelease, 50).Round(time.Millisecond))
	return nil
}

// publish puts a in ws through the fetcher's own Apply, from the bench's
// loopback artifact server.
func (b *runner) publish(ws *release.Workspace, a *pack.Artifact) error {
	url := b.arts.Put("start-"+a.Hex()+".tar.gz", a.Data)
	t, err := annotations.ParseTarget(a.Digest, url)
	if err != nil {
		return err
	}
	hc, err := release.NewHTTPClient("")
	if err != nil {
		return err
	}
	_, err = ws.Apply(b.ctx, hc, t, release.Limits{})
	return err
}

// timeStart runs argv in dir until GET /healthz on port answers 200, and
// returns how long that took from the process's start; it then stops the
// process and waits for it.
func timeStart(ctx context.Context, dir string, argv, env []string, port int) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	client := &http.Client{Timeout: 200 * time.Millisecond}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	for deadline := start.Add(20 * time.Second); time.Now().Before(deadline); {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("no answer on :%d within 20 s: %s", port, out.String())
}

// realService is save → live for the realistic app on real pods: shop-api
// (express, dependencies in its image, no command) with 2 replicas in a
// namespace enforcing Pod Security restricted, enabled with `kubectl
// devhot enable` alone, then `kubectl devhot push --watch` on a copy of
// its source, uploading through the API server's service proxy to the
// chart's store; each save rewrites src/message.js, and the latency runs
// from just before the write to when both pods answer it (asked by pod IP
// every 5 ms from this process).
func (b *runner) realService(c *cluster.Cluster) error {
	e, err := b.enableService(c, serviceNS, service)
	if err != nil {
		return err
	}
	defer e.cleanup()
	devhot, pods := e.devhot, e.pods
	src := filepath.Join(b.dir, "service-src")
	if err := apps.Copy(service, src); err != nil {
		return err
	}
	if err := b.serviceSaves(devhot, src, pods); err != nil {
		return err
	}
	last := fmt.Sprintf("save %d", b.cfg.serviceSaves)
	b.phase("health gate on 2 real pods: crashing pushes rolled back", func() error {
		return b.crashes(devhot, src, pods, last)
	})
	b.phase("reloads of the real service under steady load", func() error {
		return b.reloadsUnderLoad(devhot, src, pods)
	})
	return nil
}

// enabled is an app of test/testdata/apps on real pods, enabled.
type enabled struct {
	pods []apps.Pod
	// devhot runs the plugin against the app's namespace.
	devhot func(args ...string) *exec.Cmd
	// cleanup deletes the namespace.
	cleanup func()
}

// enableService deploys app from test/testdata/apps with 2 replicas in
// namespace ns (made, enforcing Pod Security restricted), enables it with
// `kubectl devhot enable` alone, and waits until both pods are Ready.
func (b *runner) enableService(c *cluster.Cluster, ns, app string, env ...string) (*enabled, error) {
	k := realpod.Kubectl{Bin: filepath.Join(b.root, "bin", "kubectl"), Kubeconfig: c.Kubeconfig(), Namespace: ns}
	if _, err := k.Run("", "create", "namespace", ns); err != nil {
		return nil, err
	}
	e := &enabled{cleanup: func() {
		progress("delete namespace %s on the real cluster", ns)
		if _, err := k.Run("", "delete", "namespace", ns, "--timeout=120s"); err != nil {
			fmt.Fprintf(os.Stderr, "    %v\n", err)
		}
	}}
	fail := func(err error) (*enabled, error) {
		e.cleanup()
		return nil, err
	}
	if _, err := k.Run("", "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"); err != nil {
		return fail(err)
	}
	ref, err := apps.Push(app)
	if err != nil {
		return fail(err)
	}
	if _, err := apps.Deploy(k, app, 3*time.Minute, ref); err != nil {
		return fail(err)
	}
	if len(env) > 0 {
		if _, err := k.Run("", append([]string{"set", "env", "deployment/" + app}, env...)...); err != nil {
			return fail(err)
		}
	}
	if _, err := k.Run("", "scale", "deployment", app, "--replicas=2"); err != nil {
		return fail(err)
	}
	plugin := filepath.Join(b.dir, "kubectl-devhot")
	if err := b.goBuild(plugin, "./cmd/kubectl-devhot"); err != nil {
		return fail(err)
	}
	e.devhot = func(args ...string) *exec.Cmd {
		return exec.CommandContext(b.ctx, plugin, append([]string{"--kubeconfig", c.Kubeconfig(), "-n", ns}, args...)...)
	}
	if out, err := e.devhot("enable", app).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("kubectl devhot enable: %v\n%s", err, out))
	}
	if e.pods, err = apps.WaitReady(k, app, 3*time.Minute); err != nil {
		return fail(err)
	}
	return e, nil
}

// startLines starts cmd and returns its output, stdout and stderr
// together, a line at a time; the channel closes when the output ends.
func startLines(cmd *exec.Cmd) (<-chan string, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines, nil
}

// writeMessage rewrites the service's message module, as an editor's save.
func writeMessage(src, msg string) error {
	return os.WriteFile(filepath.Join(src, serviceMessage), fmt.Appendf(nil, "module.exports = %q;\n", msg), 0o644)
}

// serviceSaves is save → live with `kubectl devhot push --watch` on the
// real service: it saves serviceSaves messages and times each to both
// pods answering it.
func (b *runner) serviceSaves(devhot func(args ...string) *exec.Cmd, src string, pods []apps.Pod) error {
	save := func(msg string) error { return writeMessage(src, msg) }
	cmd := devhot("push", service, src, "--watch", "--timeout", "30s")
	lines, err := startLines(cmd)
	if err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = waitLine(lines, "stopped", 5*time.Second)
		_ = cmd.Wait()
	}()
	// Its first push is the tree as it is, on pods that run the image's code.
	if err := waitLine(lines, "deployment.apps/"+service+": sha256:", 60*time.Second); err != nil {
		return err
	}
	// The plugin's own report of each push; it must not have failed.
	reported := func() error { return waitLine(lines, "save → live: ", 20*time.Second) }
	if b.res.serviceSave, err = b.timedSaves(b.cfg.serviceSaves, 300*time.Millisecond, pods, save, reported); err != nil {
		return err
	}
	l := b.res.serviceSave
	fmt.Fprintf(os.Stderr, "    %d saves on 2 real pods: p50 %v, p95 %v, max %v\n", len(l), bench.Percentile(l, 50).Round(time.Millisecond),
		bench.Percentile(l, 95).Round(time.Millisecond), bench.Percentile(l, 100).Round(time.Millisecond))
	return nil
}

// timedSaves makes n saves ("save 1", "save 2", …), gap apart, and times
// each from just before save(msg) to when every pod answers msg; after,
// if not nil, runs after each.
func (b *runner) timedSaves(n int, gap time.Duration, pods []apps.Pod, save func(msg string) error, after func() error) ([]time.Duration, error) {
	var l []time.Duration
	for v := 1; v <= n; v++ {
		if err := sleep(b.ctx, gap); err != nil {
			return l, err
		}
		msg := fmt.Sprintf("save %d", v)
		t0 := time.Now()
		if err := save(msg); err != nil {
			return l, err
		}
		if err := allAnswer(b.ctx, pods, msg, 20*time.Second); err != nil {
			return l, fmt.Errorf("save %d: %w", v, err)
		}
		l = append(l, time.Since(t0))
		if after != nil {
			if err := after(); err != nil {
				return l, err
			}
		}
	}
	return l, nil
}

// allAnswer polls every pod every 5 ms until each has answered msg.
func allAnswer(ctx context.Context, pods []apps.Pod, msg string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	done := map[string]bool{}
	for time.Now().Before(deadline) {
		for _, p := range pods {
			if done[p.Name] {
				continue
			}
			if a, err := p.Answer(); err == nil && a.Message == msg {
				done[p.Name] = true
			}
		}
		if len(done) == len(pods) {
			return nil
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%d of %d pods answered %q within %s", len(done), len(pods), msg, timeout)
}
