package realcluster

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/apps"
)

// tsService is ts-api as the real-service helpers drive it.
var tsService = service{app: "ts-api", images: []string{"ts-api"}, container: "ts-api", code: "ts-api", message: "src/message.ts",
	write: func(msg string) string { return fmt.Sprintf("export const message: string = %q;\n", msg) }, image: "hello from ts-api"}

// TestClusterTypeScript is issue 14's build step on real pods: ts-api (a
// TypeScript express service whose image compiles src/*.ts with tsc in a
// build stage and runs node dist/server.js) on 2 replicas, enabled with
// the label alone. Its devhot.yaml says build with `npm run build` and
// push dist/. A push builds and goes live; a type error prints tsc's
// output and pushes nothing; and under push --watch, tsc's own watch mode
// recompiles each save of a .ts file, and the change is live in both pods.
func TestClusterTypeScript(t *testing.T) {
	s := tsService
	k, pods := enabledService(t, s)

	// The developer's checkout: the source, and its devDependencies (tsc)
	// installed as `npm ci` does.
	src := t.TempDir()
	if err := apps.Copy("ts-api", src); err != nil {
		t.Fatal(err)
	}
	npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	npm.Dir = src
	if out, err := npm.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	write := func(msg string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(src, s.message), []byte(s.write(msg)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"push", "deploy/ts-api", src}

	t.Run("push builds and packs dist", func(t *testing.T) {
		write("compiled by push")
		out := k.devhot(t, base...)
		if m := liveLine.FindStringSubmatch(out); m == nil || m[2] != "2" {
			t.Fatalf("push did not go live on 2/2 pods")
		}
		for _, p := range waitAnswer(t, k, s, "compiled by push", 2) {
			if a, err := p.Answer(); err != nil || a.Raw["entry"] != "dist/server.js" {
				t.Errorf("pod %s answers %v, %v; want the compiled dist/server.js", p.Name, a.Raw, err)
			}
		}
		dry := k.devhot(t, append(base, "--dry-run")...)
		for _, want := range []string{"\n  dist/server.js ", "\n  package.json "} {
			if !strings.Contains(dry, want) {
				t.Errorf("--dry-run does not list %q", strings.TrimSpace(want))
			}
		}
		if strings.Contains(dry, "src/message.ts") {
			t.Errorf("--dry-run packs the TypeScript source; only dist/ and package.json are pushed")
		}
	})

	t.Run("a type error pushes nothing", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(src, s.message), []byte("export const message: string = 42;\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		digest := k.kubectl(t, "", "get", "deployment", "ts-api", "-o", "jsonpath={.metadata.annotations.aether\\.dev/digest}")
		out, err := k.devhotErr(t, base...)
		if err == nil || !strings.Contains(out, "error TS2322: Type 'number' is not assignable to type 'string'.") || !strings.Contains(out, "nothing pushed") {
			t.Errorf("push of a type error: %v; want exit 1 with tsc's error and nothing pushed", err)
		}
		if got := k.kubectl(t, "", "get", "deployment", "ts-api", "-o", "jsonpath={.metadata.annotations.aether\\.dev/digest}"); got != digest {
			t.Errorf("the digest changed from %s to %s after a failed build", digest, got)
		}
		waitAnswer(t, k, s, "compiled by push", 2)
	})

	t.Run("push --watch with tsc --watch", func(t *testing.T) {
		write("watch 0")
		cmd := exec.Command(plugin.path, append([]string{"--kubeconfig", k.kubeconfig, "-n", k.ns}, append(base, "--watch")...)...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = cmd.Stdout
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var output strings.Builder
		lines := make(chan string, 1000)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		drain := func() {
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						return
					}
					output.WriteString(l + "\n")
				default:
					return
				}
			}
		}
		defer func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
			drain()
			t.Logf("push --watch output:\n%s", output.String())
		}()
		waitAnswer(t, k, s, "watch 0", 2)
		for v := 1; v <= 3; v++ {
			time.Sleep(300 * time.Millisecond)
			msg := fmt.Sprintf("watch %d", v)
			start := time.Now()
			write(msg)
			got := waitAnswer(t, k, s, msg, 2)
			t.Logf("%s: live in %d pods %d ms after the save of the .ts file", msg, len(got), time.Since(start).Milliseconds())
			drain()
		}
		if !strings.Contains(output.String(), "build: ") {
			t.Errorf("push --watch did not show tsc's output")
		}
	})

	for _, p := range pods {
		if n := restartCounts(t, k, p.Name); n != 0 {
			t.Errorf("pod %s: %d container restarts", p.Name, n)
		}
	}
}
