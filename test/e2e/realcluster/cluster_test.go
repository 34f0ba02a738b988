package realcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// ClusterKubeconfigEnv points TestClusterH1H2 at the single-node cluster of
// test/framework/cluster with the chart installed (make test-cluster sets it).
// Unset, the test skips. That cluster has no DNS, so unlike TestKindH1H2
// the fetchers download from the artifact Service's ClusterIP.
const ClusterKubeconfigEnv = cluster.KubeconfigEnv

// webhookNamespace is where make test-cluster installs the chart (the
// README's namespace).
const webhookNamespace = cluster.InstallNamespace

// h1Rounds is how many digest patches TestClusterH1H2 times, as many as
// the bench.
const h1Rounds = realpod.Patches

// TestClusterH1H2 is the sample on real pods of a real kubelet, in a
// namespace that enforces Pod Security "restricted": two replicas, each
// with the injected native fetcher sidecar, whose app starts only once the
// first release is live; then H1 (a new digest: both pods answer the new
// version, timed over h1Rounds patches), H2 (the same digest: no download,
// no restart, neither of the process nor of a container), and a killed
// fetcher container (the kubelet restarts it; no download, the app runs on).
func TestClusterH1H2(t *testing.T) {
	k := clusterNamespace(t, clusterKubeconfig(t), true)

	arts, err := realpod.ServeArtifacts(k.kc(), t.TempDir(), 2+h1Rounds)
	if err != nil {
		t.Fatal(err)
	}
	versions, url := arts.Versions, arts.URL
	// The sample with two replicas, counting its starts in /tmp.
	pods, err := realpod.DeploySample(k.kc(), 2, arts)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]localpod.Answer{}
	for _, pod := range pods {
		sidecar := k.kubectl(t, "", "get", "pod", pod, "-o", `jsonpath={.spec.initContainers[?(@.name=="aether-fetcher")].restartPolicy}`)
		if sidecar != "Always" {
			t.Fatalf("pod %s: no native aether-fetcher sidecar (restartPolicy %q)", pod, sidecar)
		}
		wait.For(t, pod+" answering version 1", 60*time.Second, func() error {
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
			each, err := realpod.PatchAndWait(k.kc(), pods, v, url(v), versions[v].Digest, h1Ceiling)
			if err != nil {
				t.Fatalf("version %d: %v", v, err)
			}
			for pod, d := range each {
				t.Logf("version %d: pod %s answers %d ms after kubectl annotate", v, pod, d.Milliseconds())
			}
			took = append(took, realpod.Slowest(each))
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

	t.Run("FetcherKilled", func(t *testing.T) {
		pod := pods[0]
		want, err := k.answer(pod)
		if err != nil {
			t.Fatal(err)
		}
		downloads := logCount(t, k, "GET ", "deployment/artifacts")
		before := restarts(t, k, pod)
		killFetcher(t, k, pod)
		wait.For(t, "the kubelet restarting the fetcher", 60*time.Second, func() error {
			if got := restarts(t, k, pod); got != "1 0" {
				return fmt.Errorf("restartCount (fetcher, app) %s, was %s", got, before)
			}
			ready := k.kubectl(t, "", "get", "pod", pod, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			if ready != "True" {
				return fmt.Errorf("pod Ready=%s", ready)
			}
			return nil
		})
		if got, err := k.answer(pod); err != nil || got != want {
			t.Errorf("app answered %+v (%v), want %+v: the app restarted or reloaded", got, err, want)
		}
		if n := logCount(t, k, "GET ", "deployment/artifacts"); n != downloads {
			t.Errorf("artifact server: %d requests, want %d: the restarted fetcher downloaded again", n, downloads)
		}
	})
}

// killFetcher SIGKILLs the fetcher container's process of pod, found on
// this machine by its container ID in /proc/*/cgroup: the cluster of
// test/framework/cluster runs its containers here, and the fetcher's image has no
// shell or kill to exec.
func killFetcher(t *testing.T, k *clusterNS, pod string) {
	t.Helper()
	id := k.kubectl(t, "", "get", "pod", pod, "-o", `jsonpath={.status.initContainerStatuses[?(@.name=="aether-fetcher")].containerID}`)
	id = strings.TrimPrefix(id, "containerd://")
	if id == "" {
		t.Fatalf("pod %s: no fetcher container ID", pod)
	}
	procs, err := filepath.Glob("/proc/[0-9]*/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), id) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill fetcher pid %d: %v", pid, err)
		}
		t.Logf("killed the fetcher of %s (pid %d, container %.12s)", pod, pid, id)
		return
	}
	t.Fatalf("pod %s: no process of fetcher container %.12s on this machine", pod, id)
}

// logCount is clusterNS.count for logs that cannot be empty by now (H1
// has downloaded and refreshed): kubectl logs through this cluster's
// kubelet has returned an empty body, without an error, right after a burst
// of execs, so an empty read is retried for up to 10 s.
func logCount(t *testing.T, k *clusterNS, prefix string, logsArgs ...string) int {
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
func restarts(t *testing.T, k *clusterNS, pod string) string {
	t.Helper()
	return k.kubectl(t, "", "get", "pod", pod, "-o",
		`jsonpath={.status.initContainerStatuses[?(@.name=="aether-fetcher")].restartCount} {.status.containerStatuses[?(@.name=="`+appName+`")].restartCount}`)
}

// TestClusterWebhookFaults runs the chart's webhook through two faults on
// the cluster of test/framework/cluster: one of its two pods deleted while
// Deployments are created one by one (every one must still be mutated at
// admission: injected at generation 1, not re-admitted later), and the
// webhook scaled to 0 (failurePolicy Ignore admits a labelled Deployment
// unmutated; once the webhook is back, the manager re-admits it).
func TestClusterWebhookFaults(t *testing.T) {
	kubeconfig := clusterKubeconfig(t)
	k := clusterNamespace(t, kubeconfig, false)
	system := &clusterNS{kubeconfig: kubeconfig, ns: webhookNamespace}
	manifest, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const name, replicas = "  name: hello\n", "  replicas: 1\n"
	if !strings.Contains(string(manifest), name) || !strings.Contains(string(manifest), replicas) {
		t.Fatalf("test/testdata/deployment.yaml: no name: hello or replicas: 1 to edit")
	}
	// named is the sample as Deployment n, without pods: only admission
	// matters here.
	named := func(n string) string {
		m := strings.Replace(string(manifest), name, "  name: "+n+"\n", 1)
		return strings.Replace(m, replicas, "  replicas: 0\n", 1)
	}
	// admitted returns "<generation> <injected>" for Deployment n.
	admitted := func(n string) string {
		return k.kubectl(t, "", "get", "deployment", n, "-o",
			`jsonpath={.metadata.generation} {.metadata.annotations.aether\.dev/injected}`)
	}

	t.Run("PodKilledDuringApplies", func(t *testing.T) {
		const total, killAt = 100, 20
		victim := strings.Fields(system.kubectl(t, "", "get", "pods", "-l", "app.kubernetes.io/component=webhook",
			"-o", "jsonpath={.items[*].metadata.name}"))
		if len(victim) < 2 {
			t.Fatalf("webhook pods: %v, want 2", victim)
		}
		deleted := make(chan error, 1)
		for i := 0; i < total; i++ {
			if i == killAt {
				go func() { _, err := system.run("", "delete", "pod", victim[0]); deleted <- err }()
				t.Logf("deleting webhook pod %s after %d creates", victim[0], i)
			}
			k.kubectl(t, named(fmt.Sprintf("many-%d", i)), "create", "-f", "-")
		}
		if err := <-deleted; err != nil {
			t.Fatal(err)
		}
		failed := 0
		for i := 0; i < total; i++ {
			gen, injected, _ := strings.Cut(admitted(fmt.Sprintf("many-%d", i)), " ")
			if gen != "1" || injected == "" {
				failed++
				t.Errorf("many-%d: generation %s, injected %q: not mutated at admission", i, gen, injected)
			}
		}
		t.Logf("%d of %d Deployments mutated at admission while webhook pod %s went", total-failed, total, victim[0])
		system.kubectl(t, "", "rollout", "status", "deployment/aether-devhot", "--timeout=120s")
	})

	t.Run("ScaledToZero", func(t *testing.T) {
		startWebhook := stopWebhook(t, kubeconfig)
		k.kubectl(t, named("while-down"), "create", "-f", "-")
		if got := admitted("while-down"); got != "1 " {
			t.Fatalf("while-down admitted as %q with no webhook, want generation 1 and not injected", got)
		}
		back := time.Now()
		startWebhook()
		wait.For(t, "while-down re-admitted", 120*time.Second, func() error {
			if _, injected, _ := strings.Cut(admitted("while-down"), " "); injected == "" {
				return fmt.Errorf("not injected")
			}
			return nil
		})
		t.Logf("while-down injected %d ms after the webhook was scaled back", time.Since(back).Milliseconds())
	})
}

// TestClusterLegacyMode reinstalls the chart with sidecarMode=legacy and
// runs the sample on real pods: the fetcher is a regular container whose
// postStart hook holds the kubelet from starting the app until the first
// release is live; then one digest patch reaches the app. The chart goes
// back to sidecarMode=auto at the end.
func TestClusterLegacyMode(t *testing.T) {
	kubeconfig := clusterKubeconfig(t)
	helmSet(t, kubeconfig, "sidecarMode=legacy")
	t.Cleanup(func() { helmSet(t, kubeconfig, "sidecarMode=auto") })
	k := clusterNamespace(t, kubeconfig, true)
	arts, err := realpod.ServeArtifacts(k.kc(), t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	versions, url := arts.Versions, arts.URL
	manifest, err := realpod.SampleManifest(1)
	if err != nil {
		t.Fatal(err)
	}
	k.kubectl(t, manifest, "apply", "-f", "-")
	var pod string
	wait.For(t, "a pod of "+deployment, 60*time.Second, func() error {
		pod = k.kubectl(t, "", "get", "pods", "-l", "app="+deployment, "-o", "jsonpath={.items[*].metadata.name}")
		if pod == "" || strings.Contains(pod, " ") {
			return fmt.Errorf("pods %q, want one", pod)
		}
		return nil
	})
	hook := k.kubectl(t, "", "get", "pod", pod, "-o", `jsonpath={.spec.containers[?(@.name=="aether-fetcher")].lifecycle.postStart.exec.command}`)
	if !strings.Contains(hook, "/fetcher") {
		t.Fatalf("pod %s: no aether-fetcher container with a postStart hook (%q)", pod, hook)
	}
	// No digest yet: the postStart hook holds the kubelet, so the app must
	// not run 5 s after the pod is bound (containers start here within 1-3
	// s). The kubelet reports nothing of the pod while a hook holds it
	// (ContainerCreating, no IP), so the fetcher's own start is not visible
	// in the API; the app's single start at version 1 below shows the hold.
	wait.For(t, "pod bound to the node", 30*time.Second, func() error {
		if n := k.kubectl(t, "", "get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"); n == "" {
			return fmt.Errorf("pod %s not bound", pod)
		}
		return nil
	})
	appState := `jsonpath={.status.containerStatuses[?(@.name=="` + appName + `")].state}`
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if s := k.kubectl(t, "", "get", "pod", pod, "-o", appState); strings.Contains(s, "running") {
			t.Fatalf("app started before any release: %s", s)
		}
	}
	k.kubectl(t, "", "annotate", "--overwrite", "deployment", deployment,
		annotations.Digest+"="+versions[1].Digest, annotations.ArtifactURL+"="+url(1))
	k.kubectl(t, "", "rollout", "status", "deployment/"+deployment, "--timeout=120s")
	var first localpod.Answer
	wait.For(t, "version 1 answering", 60*time.Second, func() error {
		var err error
		if first, err = k.answer(pod); err == nil && (first.Version != 1 || first.Starts != 1) {
			err = fmt.Errorf("answered %+v, want version 1 at the first start", first)
		}
		return err
	})
	sent := time.Now()
	k.kubectl(t, "", "annotate", "--overwrite", "deployment", deployment,
		annotations.Digest+"="+versions[2].Digest, annotations.ArtifactURL+"="+url(2))
	wait.For(t, "version 2 answering", h1Ceiling, func() error {
		a, err := k.answer(pod)
		if err == nil && (a.Version != 2 || a.PID == first.PID) {
			err = fmt.Errorf("answered %+v", a)
		}
		return err
	})
	t.Logf("legacy mode: version 2 answering within %d ms of kubectl annotate (each check is a kubectl exec)", time.Since(sent).Milliseconds())
	if n := k.kubectl(t, "", "get", "pod", pod, "-o", `jsonpath={.status.containerStatuses[*].restartCount}`); n != "0 0" {
		t.Errorf("restartCount (both containers) %s, want 0 0", n)
	}
}

// helmSet upgrades the chart's release on the cluster of kubeconfig with
// its values and value (a --set key=value), then waits for the webhook's
// rollout.
func helmSet(t *testing.T, kubeconfig, value string) {
	t.Helper()
	helm := exec.Command(filepath.Join(controlplane.RepoRoot(), "bin", "helm"), "upgrade", "aether-devhot",
		filepath.Join(controlplane.RepoRoot(), "charts", "aether-devhot"), "--namespace", webhookNamespace,
		"--reuse-values", "--set", value)
	helm.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	if out, err := helm.CombinedOutput(); err != nil {
		t.Fatalf("helm upgrade --set %s: %v\n%s", value, err, out)
	}
	system := &clusterNS{kubeconfig: kubeconfig, ns: webhookNamespace}
	system.kubectl(t, "", "rollout", "status", "deployment/aether-devhot", "--timeout=120s")
	// The old replicas serve on through their preStop sleep, on the API
	// server's open connections, with the old values: done once they are
	// gone.
	wait.For(t, "the old webhook replicas gone", 60*time.Second, func() error {
		if dying := system.kubectl(t, "", "get", "pods", "-l", "app.kubernetes.io/component=webhook",
			"-o", "jsonpath={.items[?(@.metadata.deletionTimestamp)].metadata.name}"); dying != "" {
			return fmt.Errorf("still terminating: %s", dying)
		}
		return nil
	})
}

// clusterKubeconfig is the admin kubeconfig of the cluster of test/framework/cluster
// with the chart installed, from ClusterKubeconfigEnv; without it, t skips.
func clusterKubeconfig(t *testing.T) string {
	t.Helper()
	kubeconfig := os.Getenv(ClusterKubeconfigEnv)
	if kubeconfig == "" {
		t.Skipf("%s is not set: this test runs on the real single-node cluster with `make test-cluster`", ClusterKubeconfigEnv)
	}
	return kubeconfig
}

// clusterNamespace creates a namespace of t's own on the cluster of
// kubeconfig, deleted after t. A restricted one enforces Pod Security
// "restricted": the injected pods must be admitted and run there.
func clusterNamespace(t *testing.T, kubeconfig string, restricted bool) *clusterNS {
	t.Helper()
	k := &clusterNS{kubeconfig: kubeconfig, ns: controlplane.NamespaceName("e2e-", t)}
	k.kubectl(t, "", "create", "namespace", k.ns)
	t.Cleanup(func() {
		if _, err := k.run("", "delete", "namespace", k.ns, "--wait=false"); err != nil {
			t.Error(err)
		}
	})
	if restricted {
		k.kubectl(t, "", "label", "namespace", k.ns, "pod-security.kubernetes.io/enforce=restricted")
	}
	return k
}
