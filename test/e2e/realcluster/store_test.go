package realcluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/store"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
)

// prober runs in another namespace than the sample, as its own
// ServiceAccount, which may get that namespace's Deployment hello (as a
// fetcher's Role allows) and holds a token for the store's audience. It
// tries the sample's blob and fetcher, prints one JSON line per try, and
// exits.
const prober = `const fs = require('node:fs');
const crypto = require('node:crypto');
const {STORE, TEAM_A, TEAM_B, HEX, POD_A_IP} = process.env;
const token = fs.readFileSync('/var/run/store/token', 'utf8').trim();
const blob = (ns, hex) => STORE + '/v1/namespaces/' + ns + '/deployments/hello/blobs/sha256/' + hex;
const junk = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]), crypto.randomBytes(64)]);
const junkHex = crypto.createHash('sha256').update(junk).digest('hex');
const tries = [
  ['GET team A blob, no token', 'GET', blob(TEAM_A, HEX), false, null],
  ['GET team A blob, team B store token', 'GET', blob(TEAM_A, HEX), true, null],
  ['GET team A digest in team B scope, team B store token', 'GET', blob(TEAM_B, HEX), true, null],
  ['PUT junk into team A, no token', 'PUT', blob(TEAM_A, junkHex), false, junk],
  ['PUT junk into team A, team B store token', 'PUT', blob(TEAM_A, junkHex), true, junk],
  ['PUT not gzip into team A', 'PUT', blob(TEAM_A, crypto.createHash('sha256').update('x').digest('hex')), false, Buffer.from('x')],
  ['GET team A fetcher readyz', 'GET', 'http://' + POD_A_IP + ':9102/readyz', false, null],
  ['GET team A fetcher metrics', 'GET', 'http://' + POD_A_IP + ':9102/metrics', false, null],
];
(async () => {
  for (const [name, method, url, withToken, body] of tries) {
    try {
      const r = await fetch(url, {method, body, headers: withToken ? {authorization: 'Bearer ' + token} : {}});
      const text = await r.text();
      console.log(JSON.stringify({name, status: r.status, body: text.slice(0, 300), hasDigest: text.includes(HEX)}));
    } catch (e) {
      console.log(JSON.stringify({name, status: 0, body: String(e)}));
    }
  }
})();
`

// proberManifest is the prober's ServiceAccount, Role and Pod: %[1]s the
// store's URL (the token's audience), then its env values, JSON-quoted.
const proberManifest = `apiVersion: v1
kind: ServiceAccount
metadata: {name: prober}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: prober}
rules: [{apiGroups: [apps], resources: [deployments], resourceNames: [hello], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: prober}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: prober}
subjects: [{kind: ServiceAccount, name: prober}]
---
apiVersion: v1
kind: Pod
metadata: {name: prober}
spec:
  serviceAccountName: prober
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: node
    image: node:20
    command: ["node", "-e", %[2]s]
    env:
    - {name: STORE, value: %[1]q}
    - {name: TEAM_A, value: %[3]q}
    - {name: TEAM_B, value: %[4]q}
    - {name: HEX, value: %[5]q}
    - {name: POD_A_IP, value: %[6]q}
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: ["ALL"]}
    volumeMounts: [{name: store-token, mountPath: /var/run/store, readOnly: true}]
  volumes:
  - name: store-token
    projected:
      sources:
      - serviceAccountToken: {audience: %[1]q, path: token, expirationSeconds: 600}
`

// TestClusterStoreAccess is issue 13's store access control on real pods:
// team A enables the sample and pushes through the API server's service
// proxy; a pod of team B, with a token for the store's audience and the
// right to get its own namespace's Deployment hello, and clients with no
// token at all (that pod, and this test from the host), can neither read
// team A's blob nor write into team A's namespace, and team A's fetcher
// tells them no digest; team A's fetcher still gets each release, and push
// still works through the proxy.
func TestClusterStoreAccess(t *testing.T) {
	kubeconfig := clusterKubeconfig(t)
	a := clusterNamespace(t, kubeconfig, true)
	// Pods reach the store at the chart's default URL, through the
	// cluster's DNS; this test, on the host, at its ClusterIP.
	storeURL := "http://aether-devhot-store." + webhookNamespace + ".svc"
	system := &clusterNS{kubeconfig: kubeconfig, ns: webhookNamespace}
	hostURL := "http://" + system.kubectl(t, "", "get", "service", "aether-devhot-store", "-o", "jsonpath={.spec.clusterIP}")

	// Team A: the sample, unlabelled with no pods (its curl image is not
	// on this node), enabled, one pod, and a first push.
	manifest, err := realpod.SampleManifest(0)
	if err != nil {
		t.Fatal(err)
	}
	a.kubectl(t, strings.Replace(manifest, `    aether.dev/dev-hot: "true"`+"\n", "", 1), "apply", "-f", "-")
	a.devhot(t, "enable", "deploy/"+deployment)
	a.kubectl(t, "", "scale", "deployment", deployment, "--replicas=1")
	src := t.TempDir()
	server, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "app", "server.js"))
	if err != nil {
		t.Fatal(err)
	}
	push := func(v int) string {
		t.Helper()
		for name, b := range map[string][]byte{"server.js": server, "version.json": fmt.Appendf(nil, `{"version":%d}`, v)} {
			if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out := a.devhot(t, "push", "deploy/"+deployment, src)
		m := pushedLine.FindStringSubmatch(out)
		if m == nil || m[2] != "1" || m[3] != "1" {
			t.Fatalf("push of version %d through the service proxy did not go live on 1/1 pods", v)
		}
		a.kubectl(t, "", "rollout", "status", "deployment/"+deployment, "--timeout=60s")
		return strings.TrimPrefix(m[1], "sha256:")
	}
	hex := push(1)
	podA := strings.TrimSpace(a.kubectl(t, "", "get", "pods", "-l", "app="+deployment, "--field-selector=status.phase=Running",
		"-o", "jsonpath={.items[0].metadata.name}"))
	podAIP := strings.TrimSpace(a.kubectl(t, "", "get", "pod", podA, "-o", "jsonpath={.status.podIP}"))
	blobA := store.BlobRef{Namespace: a.ns, Deployment: deployment, Hex: hex}

	// From the host, with no token at all.
	for _, method := range []string{http.MethodGet, http.MethodPut} {
		req, err := http.NewRequest(method, hostURL+blobA.Path(), strings.NewReader("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xffjunk"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// A PUT of the digest team A asks for is taken only with those
		// bytes; these are not.
		want := map[string]int{http.MethodGet: 401, http.MethodPut: 400}[method]
		if resp.StatusCode != want || strings.Contains(string(body), "junk") {
			t.Errorf("%s %s from the host without a token: %d %q, want %d", method, blobA.Path(), resp.StatusCode, body, want)
		}
	}

	// Team B's pod.
	b := &clusterNS{kubeconfig: kubeconfig, ns: a.ns + "-b"}
	b.kubectl(t, "", "create", "namespace", b.ns)
	t.Cleanup(func() {
		if _, err := b.run("", "delete", "namespace", b.ns, "--wait=false"); err != nil {
			t.Error(err)
		}
	})
	b.kubectl(t, "", "label", "namespace", b.ns, "pod-security.kubernetes.io/enforce=restricted")
	script, _ := json.Marshal(prober)
	b.kubectl(t, fmt.Sprintf(proberManifest, storeURL, script, a.ns, b.ns, hex, podAIP), "apply", "-f", "-")
	b.kubectl(t, "", "wait", "pod/prober", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=120s")
	logs := b.kubectl(t, "", "logs", "prober")
	want := map[string]int{
		"GET team A blob, no token":                             401,
		"GET team A blob, team B store token":                   403,
		"GET team A digest in team B scope, team B store token": 404,
		"PUT junk into team A, no token":                        403,
		"PUT junk into team A, team B store token":              403,
		"PUT not gzip into team A":                              403,
		"GET team A fetcher readyz":                             200,
		"GET team A fetcher metrics":                            200,
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var r struct {
			Name      string
			Status    int
			Body      string
			HasDigest bool
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("prober printed %q: %v", line, err)
		}
		t.Logf("%s: %d %.120q", r.Name, r.Status, r.Body)
		seen++
		// The blob requests name the digest themselves, and the store may
		// say it back (a 404 of one's own scope does); the fetcher's
		// endpoints, asked for nothing, must not tell it.
		leaks := r.HasDigest && strings.Contains(r.Name, "fetcher")
		if r.Status != want[r.Name] || leaks {
			t.Errorf("%s: %d (digest in the answer: %v), want %d and no digest from a fetcher", r.Name, r.Status, r.HasDigest, want[r.Name])
		}
	}
	if seen != len(want) {
		t.Errorf("prober printed %d results, want %d:\n%s", seen, len(want), logs)
	}

	// Team A's fetcher still gets its releases, pushed through the proxy.
	if next := push(2); next == hex {
		t.Error("the second push has the first one's digest")
	}
	if got, err := a.answer(podA); err != nil || got.Version != 2 {
		t.Errorf("pod %s answers %+v (%v), want version 2", podA, got, err)
	}
}
