package realcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/appimage"
	"github.com/aether-dev/aether-devhot/test/framework/apps"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// TestClusterAppImages builds the apps of test/testdata/apps from
// their Dockerfiles, pushes them to the cluster's registry, applies each
// deployment.yaml unlabelled (no aether.dev/* label: the product leaves
// them alone) in a namespace enforcing Pod Security "restricted", and
// checks that every pod is Ready, answers GET / with its app's JSON (from
// the root namespace, by pod IP), and pulled its images from the registry.
func TestClusterAppImages(t *testing.T) {
	kubeconfig := clusterKubeconfig(t)
	k := clusterNamespace(t, kubeconfig, true)

	refs := map[string]string{}
	for _, name := range apps.Names {
		r, err := apps.PushDir(apps.Dir(name), name, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %s: build %d ms (npm ci runs: %d), push %d ms (pushed: %v)",
			name, r.Ref, r.Build.Milliseconds(), r.NpmRuns, r.Push.Milliseconds(), r.Pushed)
		if !strings.HasPrefix(r.Ref, cluster.RegistryAddr+"/"+name+":sha-") {
			t.Fatalf("%s: ref %s, want %s/%s:sha-…", name, r.Ref, cluster.RegistryAddr, name)
		}
		refs[name] = r.Ref
	}
	// An unchanged app: the same tag, no npm ci, nothing pushed.
	again, err := apps.PushDir(apps.Dir("shop-api"), "shop-api", nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Ref != refs["shop-api"] || again.Pushed || again.NpmRuns != 0 {
		t.Errorf("shop-api again: %+v, want ref %s, not pushed, no npm ci", again, refs["shop-api"])
	}
	t.Logf("shop-api unchanged: build %d ms, push check %d ms", again.Build.Milliseconds(), again.Push.Milliseconds())

	// The images each Deployment runs, in container order.
	images := map[string][]string{
		"shop-api":       {refs["shop-api"]},
		"esm-api":        {refs["esm-api"]},
		"distroless-api": {refs["distroless-api"]},
		"sidecar-first":  {refs["sidecar-first"], refs["shop-api"]},
		"ts-api":         {refs["ts-api"]},
	}
	for _, name := range apps.Names {
		m, err := apps.Manifest(name, images[name]...)
		if err != nil {
			t.Fatal(err)
		}
		if commandOrLabel.MatchString(m) {
			t.Fatalf("%s/deployment.yaml: has an aether.dev/ key or a command: %q", name, commandOrLabel.FindString(m))
		}
		k.kubectl(t, m, "apply", "-f", "-")
	}

	clusterDir := filepath.Dir(kubeconfig)
	for _, name := range apps.Names {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			pods, err := apps.WaitReady(k.kc(), name, 3*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d pod(s) Ready %d ms after the wait began", len(pods), time.Since(start).Milliseconds())
			for _, pod := range pods {
				var a apps.AppAnswer
				wait.For(t, pod.Name+" answering GET /", 30*time.Second, func() error {
					a, err = pod.Answer()
					return err
				})
				t.Logf("pod %s (%s): %v", pod.Name, pod.IP, a.Raw)
				wantMessage := "hello from " + name
				if name == "sidecar-first" {
					wantMessage = "hello from shop-api" // its app container is shop-api's image
				}
				if a.App != name || a.Message != wantMessage || a.PID <= 0 {
					t.Errorf("pod %s answered %+v, want app %q, message %q and a pid", pod.Name, a, name, wantMessage)
				}
				checkPulled(t, pod, images[name])
				checkApp(t, k, name, pod, a)
			}
			if name == "shop-api" {
				changedApp(t, k, pods[0], images[name][0])
			}
			for _, ref := range images[name] {
				repo := strings.TrimPrefix(ref[:strings.LastIndex(ref, ":")], cluster.RegistryAddr+"/")
				if n, err := apps.ManifestPulls(clusterDir, repo); err != nil || n == 0 {
					t.Errorf("registry log: %d manifest GETs of %s by containerd (%v), want some", n, repo, err)
				}
			}
		})
	}
}

// changedApp edits a copy of shop-api's src/message.js, pushes it (a new
// content tag, npm ci from the cache), sets the Deployment's image to it,
// and checks that the new pod pulled it and answers the new message.
func changedApp(t *testing.T, k *clusterNS, old apps.Pod, oldRef string) {
	t.Helper()
	dir := t.TempDir()
	if err := apps.Copy("shop-api", dir); err != nil {
		t.Fatal(err)
	}
	const message = "hello from shop-api, edited"
	if err := os.WriteFile(filepath.Join(dir, "src", "message.js"), []byte("module.exports = '"+message+"';\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := apps.PushDir(dir, "shop-api", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("shop-api edited: %s: build %d ms (npm ci runs: %d), push %d ms", r.Ref, r.Build.Milliseconds(), r.NpmRuns, r.Push.Milliseconds())
	if r.Ref == oldRef || !r.Pushed || r.NpmRuns != 0 {
		t.Errorf("edited shop-api: %+v, want a new tag, pushed, npm ci from the cache", r)
	}
	k.kubectl(t, "", "set", "image", "deployment/shop-api", "shop-api="+r.Ref)
	pods, err := apps.WaitReady(k.kc(), "shop-api", 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, pod := range pods {
		if pod.Name == old.Name {
			continue
		}
		var a apps.AppAnswer
		wait.For(t, pod.Name+" answering the edited message", 30*time.Second, func() error {
			if a, err = pod.Answer(); err == nil && a.Message != message {
				err = fmt.Errorf("answered %+v", a)
			}
			return err
		})
		checkPulled(t, pod, []string{r.Ref})
		return
	}
	t.Errorf("no new shop-api pod after set image: %v", pods)
}

// commandOrLabel finds, outside comments, a container command or an
// aether.dev/ label or annotation.
var commandOrLabel = regexp.MustCompile(`(?m)^[^#\n]*(\bcommand:|aether\.dev/)`)

// checkPulled checks that each container of pod runs the image of refs
// (in container order), pulled from the registry: its imageID names
// RegistryAddr and the digest the registry has for the ref.
func checkPulled(t *testing.T, pod apps.Pod, refs []string) {
	t.Helper()
	if len(pod.Containers) != len(refs) {
		t.Fatalf("pod %s: containers %v, want %d", pod.Name, pod.Containers, len(refs))
	}
	for i, c := range pod.Containers {
		img, err := appimage.Pull(refs[i])
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		repo := refs[i][:strings.LastIndex(refs[i], ":")]
		if want := repo + "@" + d.String(); pod.ImageIDs[c] != want {
			t.Errorf("pod %s container %s: imageID %q, want %q (pulled from the registry)", pod.Name, c, pod.ImageIDs[c], want)
		}
	}
}

// checkApp checks what each app's image decides: the user, the entrypoint
// and the environment of its Dockerfile.
func checkApp(t *testing.T, k *clusterNS, name string, pod apps.Pod, a apps.AppAnswer) {
	t.Helper()
	str := func(k string) string { s, _ := a.Raw[k].(string); return s }
	switch name {
	case "shop-api":
		if str("env") != "production" {
			t.Errorf("shop-api: NODE_ENV %q, want production (ENV in its Dockerfile)", str("env"))
		}
		// Pods reach the registry too, at the node's address.
		out, err := k.run("", "exec", pod.Name, "--", "node", "-e",
			`fetch('http://`+cluster.RegistryAddr+`/v2/shop-api/tags/list').then(r => r.text()).then(t => process.stdout.write(t), e => { console.error(e.message); process.exit(1); })`)
		if err != nil || !strings.Contains(out, `"shop-api"`) {
			t.Errorf("shop-api pod asking the registry for its tags: %v: %s", err, out)
		}
	case "esm-api":
		// CMD ["npm","start"]: npm runs the start script with sh, which
		// sets NODE_ENV; node's parent is not the container's init.
		if str("env") != "production" || str("module") != "esm" {
			t.Errorf("esm-api: %v, want env production (set by the npm start script) and module esm", a.Raw)
		}
		if ppid, _ := a.Raw["ppid"].(float64); ppid <= 1 {
			t.Errorf("esm-api: node's parent pid %v, want npm's shell, not pid 1", a.Raw["ppid"])
		}
	case "distroless-api":
		tracing, _ := a.Raw["tracing"].(map[string]any)
		if str("execPath") != "/nodejs/bin/node" || tracing["preloaded"] != true {
			t.Errorf("distroless-api: %v, want execPath /nodejs/bin/node and tracing preloaded by --require", a.Raw)
		}
	case "sidecar-first":
		if pod.Containers[0] != "metrics-exporter" {
			t.Errorf("sidecar-first: first container %s, want metrics-exporter", pod.Containers[0])
		}
		body, err := pod.Get(pod.Ports["metrics"], "/metrics")
		if err != nil || !strings.Contains(string(body), "sidecar_up 1") {
			t.Errorf("sidecar-first exporter: %v: %s", err, body)
		}
	case "ts-api":
		// Compiled by tsc in the image's build stage: dist/server.js runs.
		if str("entry") != "dist/server.js" {
			t.Errorf("ts-api: %v, want entry dist/server.js (the build stage's output)", a.Raw)
		}
	default:
		t.Fatal(fmt.Sprintf("no check for %s", name))
	}
}
