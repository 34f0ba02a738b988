package realcluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
	"github.com/aether-dev/aether-devhot/test/framework/apps"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/npmregistry"
)

var installedIn = regexp.MustCompile(`(?m)^  (\S+): live in \d+ms \(dependencies installed in (\d+)ms\)$`)

// TestClusterDependencyChange is issue 14's dependency change on real
// pods: shop-api (express, its node_modules in its image) on 2 replicas,
// with NPM_CONFIG_REGISTRY naming a package registry that the pods reach
// (the test's, on the host's end of the cluster's veth: the network has no
// route out). A push that adds lodash.get to package.json and the lockfile
// and uses it is installed in each pod by the image's npm, by the running
// app before the release is published, and goes live; the next push with
// the same lockfile installs nothing; a push whose lockfile names a
// package the registry lacks fails with npm's error, publishes nothing,
// and the previous release still answers.
func TestClusterDependencyChange(t *testing.T) {
	clusterKubeconfig(t) // off the cluster it skips, before the registry starts on its address
	s := services[0]
	cache, err := npmregistry.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	base, err := npmregistry.FromLockfile(filepath.Join(apps.Dir("shop-api"), "package-lock.json"), cache)
	if err != nil {
		t.Fatal(err)
	}
	get, err := npmregistry.Fetch("lodash.get", "4.4.2", cache)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := npmregistry.Start(cluster.HostAddr+":0", append(base, get)...)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	t.Logf("npm registry for the pods at %s: %d packages", reg.URL, len(base)+1)
	k, pods := enabledService(t, s, "NPM_CONFIG_REGISTRY="+reg.URL)

	src := t.TempDir()
	if err := apps.Copy(s.code, src); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(apps.Dir(s.code), name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// What lodash.get answers proves that the new package runs.
	message := func(msg string) []byte {
		return fmt.Appendf(nil, "module.exports = require('lodash.get')({ reply: { text: %q } }, 'reply.text');\n", msg)
	}
	pj, lock, err := npmregistry.AddDependencies(read("package.json"), read("package-lock.json"), get)
	if err != nil {
		t.Fatal(err)
	}
	write("package.json", pj)
	write("package-lock.json", lock)

	t.Run("a new dependency is installed in each pod", func(t *testing.T) {
		write(s.message, message("lodash.get installed"))
		out := k.devhot(t, "push", "deploy/"+s.app, src)
		if m := liveLine.FindStringSubmatch(out); m == nil || m[2] != "2" {
			t.Fatalf("push did not go live on 2/2 pods")
		}
		if n := strings.Count(out, "installing the dependencies of package-lock.json in the pod"); n != 2 {
			t.Errorf("push said %d times that a pod installs, want 2", n)
		}
		installs := installedIn.FindAllStringSubmatch(out, -1)
		if len(installs) != 2 {
			t.Errorf("push reported %d pods live with installed dependencies, want 2", len(installs))
		}
		waitAnswer(t, k, s, "lodash.get installed", 2)
		// The running app installed them, before the publish: the new
		// release's own process found them there.
		for _, m := range installs {
			if l := loadedRecord(t, k, m[1], s.container); l.Deps == nil || l.Deps.State != release.DepsCached || !l.Ready {
				t.Errorf("pod %s: the new release's record says %+v; want its dependencies there when it started", m[1], l.Deps)
			}
		}
		if !installed(reg, "lodash.get") {
			t.Errorf("no pod fetched lodash.get from the registry: %v", reg.Tarballs())
		}
		// The baseline: the same npm ci, by hand, in the same pods at once,
		// as the push's installs ran (the bench's figure; logged here).
		var wg sync.WaitGroup
		for _, m := range installs {
			wg.Go(func() {
				byHand, err := npmregistry.NpmCIByHand(k.kc(), m[1], s.container, pj, lock)
				if err != nil {
					t.Error(err)
					return
				}
				t.Logf("pod %s: the push's install took %s ms, npm ci by hand %d ms", m[1], m[2], byHand.Milliseconds())
			})
		}
		wg.Wait()
	})

	t.Run("the same lockfile installs nothing", func(t *testing.T) {
		before := len(reg.Requests())
		write(s.message, message("same lockfile, new code"))
		out := k.devhot(t, "push", "deploy/"+s.app, src)
		if m := liveLine.FindStringSubmatch(out); m == nil || m[2] != "2" {
			t.Fatalf("push did not go live on 2/2 pods")
		}
		if n := strings.Count(out, "(dependencies: cached in the pod, nothing installed)"); n != 2 {
			t.Errorf("push reported %d pods with cached dependencies, want 2", n)
		}
		if strings.Contains(out, "installing the dependencies") {
			t.Errorf("push says a pod installs again")
		}
		waitAnswer(t, k, s, "same lockfile, new code", 2)
		if after := reg.Requests()[before:]; len(after) != 0 {
			t.Errorf("the pods asked the registry for %v", after)
		}
	})

	t.Run("a failing install: npm's error, and the old release answers", func(t *testing.T) {
		missing, err := npmregistry.Pack("aether-devhot-no-such-package", "1.0.0", map[string]string{"package.json": `{"name":"aether-devhot-no-such-package","version":"1.0.0"}`})
		if err != nil {
			t.Fatal(err)
		}
		bad, badLock, err := npmregistry.AddDependencies(pj, lock, missing)
		if err != nil {
			t.Fatal(err)
		}
		write("package.json", bad)
		write("package-lock.json", badLock)
		write(s.message, message("never live"))
		serving := map[string]int{}
		for _, p := range waitAnswer(t, k, s, "same lockfile, new code", 2) {
			serving[p.Name] = answerPID(t, p)
		}
		start := time.Now()
		out, err := k.devhotErr(t, "push", "deploy/"+s.app, src)
		if err == nil {
			t.Fatal("push of a lockfile that cannot be installed exited 0")
		}
		t.Logf("push exited 1 after %d ms", time.Since(start).Milliseconds())
		for _, want := range []string{"installing its dependencies failed: npm ci failed (exit code 1)", "npm error 404", "aether-devhot-no-such-package", "the previous code serves", "failed on 2 of 2 pods (deps_install_failed)"} {
			if !strings.Contains(out, want) {
				t.Errorf("push's output lacks %q", want)
			}
		}
		for _, p := range waitAnswer(t, k, s, "same lockfile, new code", 2) {
			if pid := answerPID(t, p); pid != serving[p.Name] {
				t.Errorf("pod %s: the app's process changed from %d to %d: the failed release was published", p.Name, serving[p.Name], pid)
			}
		}
	})

	for _, p := range pods {
		if n := restartCounts(t, k, p.Name); n != 0 {
			t.Errorf("pod %s: %d container restarts", p.Name, n)
		}
	}
}

// TestClusterDependencyNoPackageManager: distroless-api (no shell, no
// npm in its image) on 2 real pods; a push whose lockfile is not the
// image's fails on every pod with no_package_manager before anything is
// published, saying what to do, and the image's code still answers from
// the same processes.
func TestClusterDependencyNoPackageManager(t *testing.T) {
	clusterKubeconfig(t) // off the cluster it skips, before the registry starts on its address
	s := services[2]
	cache, err := npmregistry.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	get, err := npmregistry.Fetch("lodash.get", "4.4.2", cache)
	if err != nil {
		t.Fatal(err)
	}
	k, pods := enabledService(t, s)
	src := t.TempDir()
	if err := apps.Copy(s.code, src); err != nil {
		t.Fatal(err)
	}
	// A release with the image's lockfile needs no package manager.
	if err := os.WriteFile(filepath.Join(src, s.message), []byte(s.write("the image's lockfile")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := k.devhot(t, "push", "deploy/"+s.app, src); strings.Count(out, "(dependencies: the image's)") != 2 {
		t.Errorf("push of the image's lockfile did not use the image's node_modules on both pods")
	}
	serving := map[string]int{}
	for _, p := range waitAnswer(t, k, s, "the image's lockfile", 2) {
		serving[p.Name] = answerPID(t, p)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pj, lock, err := npmregistry.AddDependencies(read("package.json"), read("package-lock.json"), get)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"package.json": pj, "package-lock.json": lock, s.message: []byte(s.write("never live"))} {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := k.devhotErr(t, "push", "deploy/"+s.app, src)
	if err == nil {
		t.Fatal("push of a new lockfile to an image without npm exited 0")
	}
	for _, want := range []string{"its dependencies cannot be installed: package-lock.json needs npm, and the app's image has none (not on PATH", "add npm to the image, or push the lockfile the image was built with", "the previous code serves", "failed on 2 of 2 pods (no_package_manager)"} {
		if !strings.Contains(out, want) {
			t.Errorf("push's output lacks %q", want)
		}
	}
	for _, p := range waitAnswer(t, k, s, "the image's lockfile", 2) {
		if pid := answerPID(t, p); pid != serving[p.Name] {
			t.Errorf("pod %s: the app's process changed from %d to %d", p.Name, serving[p.Name], pid)
		}
	}
	for _, p := range pods {
		if n := restartCounts(t, k, p.Name); n != 0 {
			t.Errorf("pod %s: %d container restarts", p.Name, n)
		}
	}
}

// answerPID is the pid of the app's process that answers in pod p.
func answerPID(t *testing.T, p apps.Pod) int {
	t.Helper()
	a, err := p.Answer()
	if err != nil {
		t.Fatal(err)
	}
	return a.PID
}

// loadedRecord reads boot.cjs's record from the app container of pod,
// with the node on its PATH.
func loadedRecord(t *testing.T, k *clusterNS, pod, container string) release.Loaded {
	t.Helper()
	var p corev1.Pod
	if err := json.Unmarshal([]byte(k.kubectl(t, "", "get", "pod", pod, "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	// The workspace, from the path of boot.cjs.
	var boot string
	for _, c := range p.Spec.Containers {
		for _, a := range append(c.Command, c.Args...) {
			if c.Name == container && strings.HasSuffix(a, "/"+sidecar.BootFile) {
				boot = a
			}
		}
	}
	if boot == "" {
		t.Fatalf("pod %s: container %s does not run %s", pod, container, sidecar.BootFile)
	}
	file := strings.TrimSuffix(boot, sidecar.BootFile) + sidecar.LoadedFile
	out := k.kubectl(t, "", "exec", pod, "-c", container, "--", "node", "-e", "process.stdout.write(require('fs').readFileSync(process.argv[1]))", file)
	var l release.Loaded
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("pod %s: %s: %v", pod, file, err)
	}
	return l
}

// installed reports whether the registry served a tarball of name.
func installed(reg *npmregistry.Registry, name string) bool {
	for _, p := range reg.Tarballs() {
		if strings.HasPrefix(p, "/"+name+"/-/") {
			return true
		}
	}
	return false
}
