// Package realpod runs the sample on real pods of a cluster where the chart
// is installed (the single-node cluster of test/framework/cluster) and measures H1
// there: annotate → every pod answers the new version, timed from inside
// each pod. test/e2e's TestCluster* tests and `make bench` share it, so
// that the figure of one is the figure of the other.
package realpod

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
)

const (
	// Deployment is the sample's name (test/testdata/deployment.yaml).
	Deployment = "hello"
	// AppContainer is the sample's app container.
	AppContainer = "app"
	// Patches is how many digest patches H1 on real pods times.
	Patches = 20
	// H1Ceiling is the seed's acceptance ceiling for annotate -> new code.
	H1Ceiling = 10 * time.Second
)

// ArtifactServer serves the ConfigMap of artifacts mounted at /artifacts
// inside the cluster, so pods fetch without reaching the host, and logs one
// line per request so that a test can count downloads.
const ArtifactServer = `const fs = require('node:fs');
require('node:http').createServer((req, res) => {
  console.log('GET ' + req.url);
  fs.readFile('/artifacts' + req.url, (err, b) => { res.statusCode = err ? 404 : 200; res.end(err ? '' : b); });
}).listen(8000);`

// Kubectl runs a kubectl binary against one cluster, in one namespace.
type Kubectl struct {
	Bin, Kubeconfig, Namespace string
}

// Run runs kubectl with args and stdin, and returns its stdout.
func (k Kubectl) Run(stdin string, args ...string) (string, error) {
	cmd := exec.Command(k.Bin, append([]string{"--kubeconfig", k.Kubeconfig, "-n", k.Namespace}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// Answer asks the app in pod, from inside its container (it listens on
// loopback), for its version, process and start count.
func (k Kubectl) Answer(pod string) (localpod.Answer, error) {
	out, err := k.Run("", "exec", pod, "-c", AppContainer, "--", "node", "-e",
		`fetch('http://127.0.0.1:8080/').then(r => r.text()).then(t => process.stdout.write(t), e => { console.error(e.message); process.exit(1); })`)
	if err != nil {
		return localpod.Answer{}, err
	}
	var a localpod.Answer
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		return localpod.Answer{}, fmt.Errorf("app answered %q: %w", out, err)
	}
	return a, nil
}

// Annotate sets the sample's digest and artifact URL with kubectl annotate.
func (k Kubectl) Annotate(digest, url string) error {
	_, err := k.Run("", "annotate", "--overwrite", "deployment", Deployment,
		annotations.Digest+"="+digest, annotations.ArtifactURL+"="+url)
	return err
}

// Artifacts are versions of test/testdata/app served in the cluster by the
// Service artifacts, reached by its ClusterIP (the cluster of test/framework/cluster
// has no DNS).
type Artifacts struct {
	// Versions are the artifacts by version, from 1.
	Versions map[int]artifact.Artifact
	// IP is the Service's ClusterIP.
	IP string
}

// URL is where the pods download version v.
func (a *Artifacts) URL(v int) string { return fmt.Sprintf("http://%s/hello-v%d.tar.gz", a.IP, v) }

// ServeArtifacts builds versions 1 to n of test/testdata/app into dir, puts
// them in the ConfigMap artifacts and serves it with ArtifactServer from a
// pod behind the Service artifacts, within Pod Security "restricted".
func ServeArtifacts(k Kubectl, dir string, n int) (*Artifacts, error) {
	arts := &Artifacts{Versions: map[int]artifact.Artifact{}}
	fromFile := []string{"create", "configmap", "artifacts"}
	for v := 1; v <= n; v++ {
		a, err := artifact.App(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "app"), v)
		if err != nil {
			return nil, err
		}
		f := filepath.Join(dir, fmt.Sprintf("hello-v%d.tar.gz", v))
		if err := os.WriteFile(f, a.Data, 0o644); err != nil {
			return nil, err
		}
		arts.Versions[v] = a
		fromFile = append(fromFile, "--from-file="+f)
	}
	server, err := json.Marshal(ArtifactServer)
	if err != nil {
		return nil, err
	}
	for _, step := range []struct {
		stdin string
		args  []string
	}{
		{"", fromFile},
		{fmt.Sprintf(artifactsManifest, server), []string{"apply", "-f", "-"}},
		{"", []string{"rollout", "status", "deployment/artifacts", "--timeout=120s"}},
	} {
		if _, err := k.Run(step.stdin, step.args...); err != nil {
			return nil, err
		}
	}
	ip, err := k.Run("", "get", "service", "artifacts", "-o", "jsonpath={.spec.clusterIP}")
	arts.IP = ip
	return arts, err
}

// artifactsManifest serves the ConfigMap artifacts with the node program
// %s (ArtifactServer, JSON-quoted) behind the Service artifacts, within Pod
// Security "restricted".
const artifactsManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: artifacts
spec:
  selector:
    matchLabels: {app: artifacts}
  template:
    metadata:
      labels: {app: artifacts}
    spec:
      terminationGracePeriodSeconds: 1
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: node
        image: node:20
        command: ["node", "-e", %s]
        ports: [{containerPort: 8000}]
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: ["ALL"]}
        volumeMounts: [{name: artifacts, mountPath: /artifacts}]
      volumes:
      - name: artifacts
        configMap: {name: artifacts}
---
apiVersion: v1
kind: Service
metadata:
  name: artifacts
spec:
  selector: {app: artifacts}
  ports: [{port: 80, targetPort: 8000}]
`

// SampleManifest is test/testdata/deployment.yaml with replicas pods whose
// app counts its starts in /tmp (APP_STATE_DIR).
func SampleManifest(replicas int) (string, error) {
	raw, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "deployment.yaml"))
	if err != nil {
		return "", err
	}
	const port, one = "        - name: PORT\n", "  replicas: 1\n"
	m := string(raw)
	if !strings.Contains(m, port) || !strings.Contains(m, one) {
		return "", fmt.Errorf("test/testdata/deployment.yaml: no PORT env or replicas: 1 to edit")
	}
	m = strings.Replace(m, port, "        - name: APP_STATE_DIR\n          value: /tmp\n"+port, 1)
	return strings.Replace(m, one, fmt.Sprintf("  replicas: %d\n", replicas), 1), nil
}

// DeploySample applies SampleManifest(replicas), annotates version 1 of
// arts, waits for the rollout and returns the names of the Running pods,
// which must be replicas.
func DeploySample(k Kubectl, replicas int, arts *Artifacts) ([]string, error) {
	manifest, err := SampleManifest(replicas)
	if err != nil {
		return nil, err
	}
	if _, err := k.Run(manifest, "apply", "-f", "-"); err != nil {
		return nil, err
	}
	if err := k.Annotate(arts.Versions[1].Digest, arts.URL(1)); err != nil {
		return nil, err
	}
	if _, err := k.Run("", "rollout", "status", "deployment/"+Deployment, "--timeout=180s"); err != nil {
		return nil, err
	}
	out, err := k.Run("", "get", "pods", "-l", "app="+Deployment,
		"--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}")
	if err != nil {
		return nil, err
	}
	pods := strings.Fields(out)
	if len(pods) != replicas {
		return nil, fmt.Errorf("running pods of %s: %v, want %d", Deployment, pods, replicas)
	}
	return pods, nil
}

// versionWatcher polls the app from inside its container every 5 ms, says
// "ready" after its first answer, and prints the wall clock in ms when the
// app answers version %d. Containers share the machine's clock, so the
// time is comparable with the caller's.
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

// PatchAndWait starts a version watcher inside each pod, waits until every
// one answers, then annotates the sample with digest and url (version v)
// and returns, for each pod, the time from just before kubectl annotate
// until it answered v, as seen from inside the pod (not through a kubectl
// exec per check). It fails if a pod has not answered v within ceiling.
func PatchAndWait(k Kubectl, pods []string, v int, url, digest string, ceiling time.Duration) (map[string]time.Duration, error) {
	type seen struct {
		pod string
		at  time.Time
		err error
	}
	results := make(chan seen, len(pods))
	ready := make(chan string, len(pods))
	for _, pod := range pods {
		cmd := exec.Command(k.Bin, "--kubeconfig", k.Kubeconfig, "-n", k.Namespace, "exec", pod, "-c", AppContainer, "--",
			"node", "-e", fmt.Sprintf(versionWatcher, v))
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		defer func() { _ = cmd.Process.Kill() }()
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
	}
	for range pods {
		select {
		case <-ready:
		case r := <-results:
			return nil, fmt.Errorf("pod %s: %v", r.pod, r.err)
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("version watchers not ready after 30s")
		}
	}
	sent := time.Now()
	if err := k.Annotate(digest, url); err != nil {
		return nil, err
	}
	took := map[string]time.Duration{}
	timeout := time.After(ceiling)
	for range pods {
		select {
		case r := <-results:
			if r.err != nil {
				return nil, fmt.Errorf("pod %s: %v", r.pod, r.err)
			}
			took[r.pod] = r.at.Sub(sent)
		case <-timeout:
			return nil, fmt.Errorf("version %d: not answered by every pod within %s", v, ceiling)
		}
	}
	return took, nil
}

// Slowest is the longest of took: when the last pod answered.
func Slowest(took map[string]time.Duration) time.Duration {
	var d time.Duration
	for _, t := range took {
		d = max(d, t)
	}
	return d
}
