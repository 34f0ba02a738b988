package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/artifact"
	"github.com/aether-dev/aether-devhot/test/controlplane"
	"github.com/aether-dev/aether-devhot/test/localpod"
)

// ClusterKubeconfigEnv points TestClusterH1H2 at the single-node cluster of
// test/cluster with the chart installed (make test-cluster sets it).
// Unset, the test skips. That cluster has no DNS, so unlike TestKindH1H2
// the fetchers download from the artifact Service's ClusterIP.
const ClusterKubeconfigEnv = "AETHER_CLUSTER_KUBECONFIG"

// h1Rounds is how many digest patches TestClusterH1H2 times.
const h1Rounds = 20

// TestClusterH1H2 is the sample on real pods of a real kubelet: two
// replicas, each with the injected native fetcher sidecar, whose app starts
// only once the first release is live; then H1 (a new digest: both pods
// answer the new version, timed over h1Rounds patches) and H2 (the same
// digest: no download, no restart, neither of the process nor of a
// container).
func TestClusterH1H2(t *testing.T) {
	kubeconfig := os.Getenv(ClusterKubeconfigEnv)
	if kubeconfig == "" {
		t.Skipf("%s is not set: this test runs on the real single-node cluster with `make test-cluster`", ClusterKubeconfigEnv)
	}
	k := &kindCluster{kubeconfig: kubeconfig, ns: controlplane.NamespaceName("e2e-", t)}
	k.kubectl(t, "", "create", "namespace", k.ns)
	t.Cleanup(func() {
		if _, err := k.run("", "delete", "namespace", k.ns, "--wait=false"); err != nil {
			t.Error(err)
		}
	})

	dir := t.TempDir()
	versions := map[int]artifact.Artifact{}
	fromFile := []string{"create", "configmap", "artifacts"}
	for v := 1; v <= 2+h1Rounds; v++ {
		a, err := artifact.App(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "app"), v)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, fmt.Sprintf("hello-v%d.tar.gz", v))
		if err := os.WriteFile(f, a.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		versions[v] = a
		fromFile = append(fromFile, "--from-file="+f)
	}
	k.kubectl(t, "", fromFile...)
	k.kubectl(t, "", "create", "deployment", "artifacts", "--image=node:20", "--port=8000", "--", "node", "-e", artifactServer)
	k.kubectl(t, "", "patch", "deployment", "artifacts", "--type=strategic", "-p",
		`{"spec":{"template":{"spec":{"terminationGracePeriodSeconds":1,"volumes":[{"name":"artifacts","configMap":{"name":"artifacts"}}],"containers":[{"name":"node","volumeMounts":[{"name":"artifacts","mountPath":"/artifacts"}]}]}}}}`)
	k.kubectl(t, "", "expose", "deployment", "artifacts", "--port=80", "--target-port=8000")
	k.kubectl(t, "", "rollout", "status", "deployment/artifacts", "--timeout=120s")
	ip := k.kubectl(t, "", "get", "service", "artifacts", "-o", "jsonpath={.spec.clusterIP}")
	url := func(v int) string { return fmt.Sprintf("http://%s/hello-v%d.tar.gz", ip, v) }

	// The sample with two replicas, counting its starts in /tmp.
	manifest, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const port, replicas = "        - name: PORT\n", "  replicas: 1\n"
	if !strings.Contains(string(manifest), port) || !strings.Contains(string(manifest), replicas) {
		t.Fatalf("test/testdata/deployment.yaml: no PORT env or replicas: 1 to edit")
	}
	edited := strings.Replace(string(manifest), port, "        - name: APP_STATE_DIR\n          value: /tmp\n"+port, 1)
	edited = strings.Replace(edited, replicas, "  replicas: 2\n", 1)
	k.kubectl(t, edited, "apply", "-f", "-")
	k.kubectl(t, "", "annotate", "--overwrite", "deployment", deployment,
		annotations.Digest+"="+versions[1].Digest, annotations.ArtifactURL+"="+url(1))
	k.kubectl(t, "", "rollout", "status", "deployment/"+deployment, "--timeout=180s")

	pods := strings.Fields(k.kubectl(t, "", "get", "pods", "-l", "app="+deployment,
		"--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}"))
	if len(pods) != 2 {
		t.Fatalf("running pods of %s: %v, want 2", deployment, pods)
	}
	before := map[string]localpod.Answer{}
	for _, pod := range pods {
		sidecar := k.kubectl(t, "", "get", "pod", pod, "-o", `jsonpath={.spec.initContainers[?(@.name=="aether-fetcher")].restartPolicy}`)
		if sidecar != "Always" {
			t.Fatalf("pod %s: no native aether-fetcher sidecar (restartPolicy %q)", pod, sidecar)
		}
		controlplane.Eventually(t, pod+" answering version 1", 60*time.Second, func() error {
			a, err := k.answer(pod)
			if err == nil && a.Version != 1 {
				err = fmt.Errorf("answered %+v", a)
			}
			before[pod] = a
			return err
		})
		// One start, at version 1, and no container restart: the app did
		// not start before the first release was live.
		if before[pod].Starts != 1 {
			t.Errorf("pod %s: app started %d times before version 1 answered, want 1", pod, before[pod].Starts)
		}
		if n := restarts(t, k, pod); n != "0 0" {
			t.Errorf("pod %s: restartCount (fetcher, app) = %s, want 0 0", pod, n)
		}
	}

	t.Run("H1", func(t *testing.T) {
		var took []time.Duration
		for v := 2; v < 2+h1Rounds; v++ {
			d := patchAndWait(t, k, pods, v, url(v), versions[v].Digest)
			took = append(took, d)
			for _, pod := range pods {
				after, err := k.answer(pod)
				if err != nil {
					t.Fatal(err)
				}
				if after.PID == before[pod].PID || after.Starts != before[pod].Starts+1 {
					t.Errorf("pod %s: %+v after %+v: want one new start", pod, after, before[pod])
				}
				before[pod] = after
			}
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		t.Logf("H1 on real pods, kubectl annotate -> both pods answer the new version, %d rounds: p50 %d ms, p95 %d ms, max %d ms",
			len(took), took[len(took)/2].Milliseconds(), took[(len(took)*95+99)/100-1].Milliseconds(), took[len(took)-1].Milliseconds())
	})

	t.Run("H2", func(t *testing.T) {
		last := 1 + h1Rounds
		want := map[string]localpod.Answer{}
		refreshes := map[string]int{}
		restartCounts := map[string]string{}
		for _, pod := range pods {
			a, err := k.answer(pod)
			if err != nil {
				t.Fatal(err)
			}
			want[pod] = a
			refreshes[pod] = logCount(t, k, "REFRESH_", pod, "-c", "aether-fetcher")
			restartCounts[pod] = restarts(t, k, pod)
		}
		downloads := logCount(t, k, "GET ", "deployment/artifacts")
		template := k.kubectl(t, "", "get", "deployment", deployment, "-o", "jsonpath={.spec.template}")

		k.kubectl(t, "", "annotate", "--overwrite", "deployment", deployment,
			annotations.Digest+"="+versions[last].Digest, annotations.ArtifactURL+"="+url(last))
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
			for _, pod := range pods {
				if got, err := k.answer(pod); err != nil || got != want[pod] {
					t.Fatalf("pod %s answered %+v (%v), want %+v: a restart or a reload", pod, got, err, want[pod])
				}
			}
		}
		if n := logCount(t, k, "GET ", "deployment/artifacts"); n != downloads {
			t.Errorf("artifact server: %d requests, want %d (a download)", n, downloads)
		}
		for _, pod := range pods {
			if n := logCount(t, k, "REFRESH_", pod, "-c", "aether-fetcher"); n != refreshes[pod] {
				t.Errorf("pod %s: fetcher logged %d REFRESH_ lines, want %d", pod, n, refreshes[pod])
			}
			if n := restarts(t, k, pod); n != restartCounts[pod] {
				t.Errorf("pod %s: restartCount (fetcher, app) %s, was %s", pod, n, restartCounts[pod])
			}
		}
		if got := k.kubectl(t, "", "get", "deployment", deployment, "-o", "jsonpath={.spec.template}"); got != template {
			t.Errorf(".spec.template changed (a rollout):\n%s\n%s", template, got)
		}
	})
}

// logCount is kindCluster.count for logs that cannot be empty by now (H1
// has downloaded and refreshed): kubectl logs through this cluster's
// kubelet has returned an empty body, without an error, right after a burst
// of execs, so an empty read is retried for up to 10 s.
func logCount(t *testing.T, k *kindCluster, prefix string, logsArgs ...string) int {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		n := k.count(t, prefix, logsArgs...)
		if n > 0 || time.Now().After(end) {
			return n
		}
		t.Logf("kubectl logs %s: no %q line yet, reading again", strings.Join(logsArgs, " "), prefix)
	}
}

// restarts returns the restartCount of pod's fetcher and app containers.
func restarts(t *testing.T, k *kindCluster, pod string) string {
	t.Helper()
	return k.kubectl(t, "", "get", "pod", pod, "-o",
		`jsonpath={.status.initContainerStatuses[?(@.name=="aether-fetcher")].restartCount} {.status.containerStatuses[?(@.name=="`+appName+`")].restartCount}`)
}

// versionWatcher polls the app from inside its container every 5 ms, says
// "ready" after its first answer, and prints the wall clock in ms when the
// app answers version %d. Containers share the machine's clock, so the
// time is comparable with the test's.
const versionWatcher = `let said = false;
(async () => {
  for (;;) {
    try {
      const a = await (await fetch('http://127.0.0.1:8080/')).json();
      if (!said) { said = true; console.log('ready'); }
      if (a.version === %d) { console.log('seen ' + Date.now()); process.exit(0); }
    } catch (e) {}
    await new Promise(r => setTimeout(r, 5));
  }
})();`

// patchAndWait patches the digest to version v and returns the time from
// just before kubectl annotate until every pod answers v, as seen from
// inside each pod (not through a kubectl exec per check).
func patchAndWait(t *testing.T, k *kindCluster, pods []string, v int, url, digest string) time.Duration {
	t.Helper()
	type seen struct {
		pod string
		at  time.Time
		err error
	}
	results := make(chan seen, len(pods))
	ready := make(chan string, len(pods))
	for _, pod := range pods {
		cmd := exec.Command(cp.Kubectl, "--kubeconfig", k.kubeconfig, "-n", k.ns, "exec", pod, "-c", appName, "--",
			"node", "-e", fmt.Sprintf(versionWatcher, v))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func(pod string) {
			s := bufio.NewScanner(out)
			r := seen{pod: pod, err: fmt.Errorf("watcher ended without seeing version %d", v)}
			for s.Scan() {
				if s.Text() == "ready" {
					ready <- pod
				} else if ms, ok := strings.CutPrefix(s.Text(), "seen "); ok {
					n, err := strconv.ParseInt(ms, 10, 64)
					r = seen{pod: pod, at: time.UnixMilli(n), err: err}
				}
			}
			if err := cmd.Wait(); err != nil && r.at.IsZero() {
				r.err = fmt.Errorf("%v: %v: %s", r.err, err, stderr.String())
			}
			results <- r
		}(pod)
		t.Cleanup(func() { _ = cmd.Process.Kill() })
	}
	for range pods {
		select {
		case <-ready:
		case r := <-results:
			t.Fatalf("pod %s: %v", r.pod, r.err)
		case <-time.After(30 * time.Second):
			t.Fatal("version watchers not ready after 30s")
		}
	}
	sent := time.Now()
	k.kubectl(t, "", "annotate", "--overwrite", "deployment", deployment,
		annotations.Digest+"="+digest, annotations.ArtifactURL+"="+url)
	var slowest time.Duration
	timeout := time.After(h1Ceiling)
	for range pods {
		select {
		case r := <-results:
			if r.err != nil {
				t.Fatalf("pod %s: %v", r.pod, r.err)
			}
			if d := r.at.Sub(sent); d > slowest {
				slowest = d
			}
			t.Logf("version %d: pod %s answers %d ms after kubectl annotate", v, r.pod, r.at.Sub(sent).Milliseconds())
		case <-timeout:
			t.Fatalf("version %d: not answered by every pod within %s", v, h1Ceiling)
		}
	}
	return slowest
}
