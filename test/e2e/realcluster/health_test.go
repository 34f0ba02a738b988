package realcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/framework/apps"
)

// healthTimeoutSec is the health timeout the test sets on its Deployment,
// so that the unhealthy case waits seconds, not the default 30.
const healthTimeoutSec = "5"

// brokenRelease is one case of TestClusterHealthGate: what the push breaks
// in shop-api's source, and what push must print about it.
type brokenRelease struct {
	name string
	// files are written over a good copy of the source.
	files map[string]string
	// want is what push's output must say, per pod.
	want []string
}

// serverWith is shop-api's server.js with extra inserted before the routes.
func serverWith(t *testing.T, extra string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(apps.Dir("shop-api"), "src", "server.js"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	at := strings.Index(s, "app.get('/', ")
	if at < 0 {
		t.Fatal("shop-api's server.js has no GET / route to insert before")
	}
	return s[:at] + extra + "\n" + s[at:]
}

// TestClusterHealthGate is issue 12's "done" on real pods: shop-api (its
// image with express, its chart-shaped Deployment with a readiness probe
// on /healthz) on 2 replicas, enabled with the label alone. Each broken
// push is its own case: push exits 1 within seconds and prints each pod's
// error and what it rolled back to; the code that served before answers
// again in every pod; and the next good push goes live. The first push
// crashes, so the first case rolls back to the image's own code.
func TestClusterHealthGate(t *testing.T) {
	s := services[0]
	k, pods := enabledService(t, s)
	k.kubectl(t, "", "annotate", "deployment", "shop-api", annotations.HealthTimeoutSec+"="+healthTimeoutSec)
	names := podNames(pods)

	src := t.TempDir()
	good := 0
	// pushGood pushes a new good version and waits for it in both pods.
	pushGood := func(t *testing.T) string {
		t.Helper()
		if err := apps.Copy("shop-api", src); err != nil {
			t.Fatal(err)
		}
		good++
		msg := fmt.Sprintf("good version %d", good)
		if err := os.WriteFile(filepath.Join(src, s.message), []byte(s.write(msg)), 0o644); err != nil {
			t.Fatal(err)
		}
		out := k.devhot(t, "push", "deploy/shop-api", src)
		m := liveLine.FindStringSubmatch(out)
		if m == nil || m[2] != "2" {
			t.Fatalf("the good push did not go live on 2/2 pods")
		}
		waitAnswer(t, k, s, msg, 2)
		return m[1]
	}
	// pushBroken pushes c over the current good source; it must fail on
	// both pods, roll back to what served (previous, or "" for the image's
	// code), and the previous answer must come back in both pods.
	pushBroken := func(t *testing.T, c brokenRelease, previous, answer string) {
		t.Helper()
		for name, body := range c.files {
			if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		out, err := k.devhotErr(t, "push", "deploy/shop-api", src)
		exited := time.Since(start)
		if err == nil {
			t.Fatalf("push of a broken release exited 0")
		}
		if strings.Contains(out, "timed out") {
			t.Errorf("push timed out instead of reporting the pods' failures")
		}
		rolledTo := "rolled back to the image's own code"
		if previous != "" {
			rolledTo = "rolled back to " + previous
		}
		for _, pod := range names {
			block := podBlock(out, pod)
			for _, w := range append(slices.Clone(c.want), rolledTo) {
				if !strings.Contains(block, w) {
					t.Errorf("push output for pod %s lacks %q", pod, w)
				}
			}
		}
		if !strings.Contains(out, "failed on 2 of 2 pods") {
			t.Errorf("push did not sum up the failure")
		}
		waitAnswer(t, k, s, answer, 2)
		t.Logf("%s: push exited 1 after %d ms; the previous code answers in both pods %d ms after the push started",
			c.name, exited.Milliseconds(), time.Since(start).Milliseconds())
		status := k.devhot(t, "status", "deploy/shop-api")
		for _, pod := range names {
			if !strings.Contains(status, pod) {
				t.Errorf("status does not list pod %s", pod)
			}
		}
		_, appErr, _ := strings.Cut(c.want[0], " on it: ")
		if !strings.Contains(status, "rolled back") || !strings.Contains(status, appErr) {
			t.Errorf("status does not show the rollback and the error %q", appErr)
		}
	}

	var previous string
	answer := s.image
	cases := []brokenRelease{
		{
			name:  "first push crashes: back to the image's code",
			files: map[string]string{"src/message.js": "module.exports = 'never served';\nthrow new Error('config file missing');\n"},
			want:  []string{"the app crashed on it: Error: config file missing", "at Object.<anonymous> (src/message.js:2:7)"},
		},
		{
			name:  "syntax error",
			files: map[string]string{"src/message.js": "module.exports = 'never served' oops;\n"},
			want:  []string{"the app crashed on it: SyntaxError: ", "src/message.js:1"},
		},
		{
			name:  "missing module",
			files: map[string]string{"src/message.js": "module.exports = require('left-pad')('never served', 20);\n"},
			want:  []string{"the app crashed on it: Error [MODULE_NOT_FOUND]: Cannot find module 'left-pad'", "at Object.<anonymous> (src/message.js:1:18)"},
		},
		{
			name:  "readiness answers 500",
			files: map[string]string{"src/server.js": serverWith(t, "app.get('/healthz', (req, res) => res.status(500).json({ status: 'database unreachable' }));")},
			want:  []string{"the app was not healthy on it in time: loaded, but its probe had not passed after " + healthTimeoutSec + "s", "/healthz: 500 Internal Server Error", "database unreachable"},
		},
		{
			name:  "crash on the first request",
			files: map[string]string{"src/server.js": serverWith(t, "app.use(() => setImmediate(() => { throw new Error('cannot serve a request'); }));")},
			want:  []string{"the app crashed on it: Error: cannot serve a request", "at Immediate.<anonymous> (src/server.js:"},
		},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if i > 0 {
				previous = pushGood(t)
				answer = fmt.Sprintf("good version %d", good)
			} else if err := apps.Copy("shop-api", src); err != nil {
				t.Fatal(err)
			}
			pushBroken(t, c, previous, answer)
		})
	}
	t.Run("the next good push goes live", func(t *testing.T) {
		pushGood(t)
		for _, p := range names {
			if n := restartCounts(t, k, p); n != 0 {
				t.Errorf("pod %s: %d container restarts; a broken push must not restart containers", p, n)
			}
		}
		if got := podNames(waitAnswer(t, k, s, fmt.Sprintf("good version %d", good), 2)); !slices.Equal(got, names) {
			t.Errorf("pods %v, want the same %v: no rollout", got, names)
		}
	})
}

// podBlock is what push printed about pod: from its "  <pod>: " line to the
// next line of another pod or push's own.
func podBlock(out, pod string) string {
	at := strings.Index(out, "\n  "+pod+": ")
	if at < 0 {
		return ""
	}
	var b strings.Builder
	for i, line := range strings.Split(out[at+1:], "\n") {
		if i > 0 && !strings.HasPrefix(line, "    ") {
			break
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// enabledService deploys s's app from test/testdata/apps, unlabelled, with
// 2 replicas, in a new namespace enforcing Pod Security "restricted";
// enables it with `kubectl devhot enable` alone, and waits until both pods
// answer from the image's own code. env ("NAME=value") is set on the app
// container first, as a user's manifest would. It returns the namespace
// and the pods.
func enabledService(t *testing.T, s service, env ...string) (*clusterNS, []apps.Pod) {
	t.Helper()
	kubeconfig := clusterKubeconfig(t)
	var refs []string
	for _, name := range s.images {
		ref, err := apps.Push(name)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	k := clusterNamespace(t, kubeconfig, true)
	if _, err := apps.Deploy(k.kc(), s.app, 3*time.Minute, refs...); err != nil {
		t.Fatal(err)
	}
	if len(env) > 0 {
		k.kubectl(t, "", append([]string{"set", "env", "deployment/" + s.app, "-c", s.container}, env...)...)
	}
	k.kubectl(t, "", "scale", "deployment", s.app, "--replicas=2")
	k.devhot(t, "enable", "deploy/"+s.app)
	return k, waitAnswer(t, k, s, s.image, 2)
}
