// Package apps runs the realistic Node.js apps of test/testdata/apps on the
// real single-node cluster of test/framework/cluster: it builds an app's
// image from its Dockerfile (test/framework/appimage) on the cluster's
// bases, pushes it to the cluster's registry under a content tag, renders
// the app's deployment.yaml with that reference, and waits for the app's
// pods and asks them for their JSON, from the root namespace by pod IP.
//
// A test on the cluster (AETHER_CLUSTER_KUBECONFIG set) does:
//
//	ref, err := apps.Push("shop-api")                  // 10.201.0.2:5000/shop-api:sha-…
//	manifest, err := apps.Manifest("shop-api", ref)    // deployment.yaml, __TAG__ replaced
//	k.Run(manifest, "apply", "-f", "-")                 // k is a realpod.Kubectl
//	pods, err := apps.WaitReady(k, "shop-api", 2*time.Minute)
//	answer, err := pods[0].Answer()                     // GET / on the "http" port
//
// To try a changed app, Copy its directory, edit src/message.js there and
// PushDir the copy: the content tag changes, so pods pull the new image
// (and npm ci comes from the cache while the lockfile is unchanged).
package apps

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/test/framework/appimage"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
)

// Names are the apps of test/testdata/apps.
var Names = []string{"shop-api", "esm-api", "distroless-api", "sidecar-first", "ts-api"}

// Placeholder is the tag that a deployment.yaml writes for each image of
// the cluster's registry: "10.201.0.2:5000/<app>:__TAG__". Manifest
// replaces it with the tag Push returned for that app.
const Placeholder = "__TAG__"

// Dir is the directory of the app name: test/testdata/apps/<name>.
func Dir(name string) string {
	return filepath.Join(controlplane.RepoRoot(), "test", "testdata", "apps", name)
}

// Copy copies the app name's directory into dst (made if missing), but
// for node_modules, so that a test can edit the copy (src/message.js) and
// PushDir it.
func Copy(name, dst string) error {
	src := Dir(name)
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		at := filepath.Join(dst, rel)
		switch {
		case d.IsDir() && d.Name() == "node_modules":
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(at, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, at)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(at, b, info.Mode().Perm())
	})
}

// Report is what PushDir did.
type Report struct {
	// Ref is the pushed image: RegistryAddr/<name>:<content tag>.
	Ref string
	// Pushed is false when the registry had that tag already.
	Pushed bool
	// NpmRuns counts the npm ci runs; 0 when every RUN npm ci came from the
	// cache.
	NpmRuns int
	// Build and Push are how long building (npm ci included) and pushing
	// took.
	Build, Push time.Duration
}

// Push builds the app name from Dir(name) and pushes it to the cluster's
// registry as cluster.RegistryAddr/<name>:<tag>, where the tag is derived
// from the image's content (an unchanged app is not pushed again; a
// changed one gets a new tag). It returns the reference.
func Push(name string) (ref string, err error) {
	r, err := PushDir(Dir(name), name, nil)
	return r.Ref, err
}

// PushDir is Push for the app in dir (a copy of one, say), pushed as
// repository name, with the builder's log to log (nil: none). Before the
// build, each subdirectory of dir holding a main.go is built with
// CGO_ENABLED=0 go build into <subdir>/<subdir>, as a Makefile would before
// `docker build` (sidecar-first's exporter).
func PushDir(dir, name string, log io.Writer) (Report, error) {
	var r Report
	start := time.Now()
	if err := buildGoPrograms(dir); err != nil {
		return r, err
	}
	bases, err := Bases()
	if err != nil {
		return r, err
	}
	b := &appimage.Builder{Bases: bases, Log: log}
	img, err := b.Build(dir)
	if err != nil {
		return r, err
	}
	r.NpmRuns, r.Build = b.NpmRuns, time.Since(start)
	start = time.Now()
	r.Ref, r.Pushed, err = appimage.PushContent(img, cluster.RegistryAddr+"/"+name)
	r.Push = time.Since(start)
	return r, err
}

// Bases are the cluster's base images, read from its registry by the names
// a Dockerfile's FROM uses (cluster.BaseImages); their layers are read only
// when a build needs them.
func Bases() (map[string]v1.Image, error) {
	bases := map[string]v1.Image{}
	byRef := map[string]v1.Image{}
	for name, ref := range cluster.BaseImages {
		img, ok := byRef[ref]
		if !ok {
			var err error
			if img, err = appimage.Pull(ref); err != nil {
				return nil, fmt.Errorf("base %s: %w (the cluster pushes its bases at up and in make cluster-images)", name, err)
			}
			byRef[ref] = img
		}
		bases[name] = img
	}
	return bases, nil
}

// buildGoPrograms builds each dir/<sub>/main.go into dir/<sub>/<sub>,
// statically. Inside this module it builds as a package of it; a copy
// elsewhere builds with GO111MODULE=off (such programs use only the
// standard library).
func buildGoPrograms(dir string) error {
	mains, err := filepath.Glob(filepath.Join(dir, "*", "main.go"))
	if err != nil {
		return err
	}
	root := controlplane.RepoRoot()
	for _, m := range mains {
		sub := filepath.Dir(m)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Base(sub), ".")
		cmd.Dir = sub
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if rel, err := filepath.Rel(root, sub); err != nil || strings.HasPrefix(rel, "..") {
			cmd.Env = append(cmd.Env, "GO111MODULE=off")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", sub, err, out)
		}
	}
	return nil
}

// Manifest is Dir(name)/deployment.yaml with each
// "<registry>/<repo>:__TAG__" replaced by the ref of refs that names
// <registry>/<repo>. A placeholder left, or a ref that matches none, is an
// error.
func Manifest(name string, refs ...string) (string, error) {
	return ManifestFile(filepath.Join(Dir(name), "deployment.yaml"), refs...)
}

// ManifestFile is Manifest for a deployment.yaml at file.
func ManifestFile(file string, refs ...string) (string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	m := string(raw)
	for _, ref := range refs {
		i := strings.LastIndex(ref, ":")
		if i < 0 || strings.Contains(ref[i:], "/") {
			return "", fmt.Errorf("%s: want <registry>/<repository>:<tag>", ref)
		}
		placeholder := ref[:i] + ":" + Placeholder
		if !strings.Contains(m, placeholder) {
			return "", fmt.Errorf("%s: no image %s to replace", file, placeholder)
		}
		m = strings.ReplaceAll(m, placeholder, ref)
	}
	if left := placeholderRE.FindString(m); left != "" {
		return "", fmt.Errorf("%s: image %s has no ref (pass the ref Push returned for it)", file, left)
	}
	return m, nil
}

var placeholderRE = regexp.MustCompile(`\S+:` + Placeholder)

// Pod is a Ready pod of an app.
type Pod struct {
	Name string
	// IP is the pod's IP, reachable from the root namespace (the harness
	// routes the pod network to the node).
	IP string
	// Ports are the containers' ports by name ("http", "metrics").
	Ports map[string]int
	// ImageIDs are the containers' image IDs by container name, as the
	// kubelet reports them: <registry>/<repo>@sha256:… for a pulled image.
	ImageIDs map[string]string
	// Containers are the container names in spec order.
	Containers []string
}

// AppAnswer is an app's answer to GET /.
type AppAnswer struct {
	App     string `json:"app"`
	Message string `json:"message"`
	PID     int    `json:"pid"`
	// Raw is the whole answer.
	Raw map[string]any `json:"-"`
}

// Answer asks the pod's "http" port for GET /.
func (p Pod) Answer() (AppAnswer, error) {
	port, ok := p.Ports["http"]
	if !ok {
		return AppAnswer{}, fmt.Errorf("pod %s has no port named http", p.Name)
	}
	body, err := p.Get(port, "/")
	if err != nil {
		return AppAnswer{}, err
	}
	var a AppAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return AppAnswer{}, fmt.Errorf("pod %s answered %q: %w", p.Name, body, err)
	}
	if err := json.Unmarshal(body, &a.Raw); err != nil {
		return AppAnswer{}, err
	}
	return a, nil
}

// client asks pods directly, whatever proxy the environment names.
var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}

// Get GETs http://<pod IP>:<port><path> and returns the body of a 200.
func (p Pod) Get(port int, path string) ([]byte, error) {
	resp, err := client.Get(fmt.Sprintf("http://%s:%d%s", p.IP, port, path))
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", p.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("pod %s: GET %s: %s: %s", p.Name, path, resp.Status, body)
	}
	return body, nil
}

// Deploy applies Manifest(name, refs...) in k's namespace and waits for
// its pods with WaitReady.
func Deploy(k realpod.Kubectl, name string, timeout time.Duration, refs ...string) ([]Pod, error) {
	m, err := Manifest(name, refs...)
	if err != nil {
		return nil, err
	}
	if _, err := k.Run(m, "apply", "-f", "-"); err != nil {
		return nil, err
	}
	return WaitReady(k, name, timeout)
}

// WaitReady waits until the Deployment name in k's namespace has rolled
// out and each of its pods (app.kubernetes.io/instance=name) is Ready and
// not terminating, and returns them.
func WaitReady(k realpod.Kubectl, name string, timeout time.Duration) ([]Pod, error) {
	deadline := time.Now().Add(timeout)
	if _, err := k.Run("", "rollout", "status", "deployment/"+name, fmt.Sprintf("--timeout=%ds", int(timeout.Seconds()))); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, describe(k, name))
	}
	var last error
	for time.Now().Before(deadline) {
		pods, err := readyPods(k, name)
		if err == nil {
			return pods, nil
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	return nil, fmt.Errorf("pods of %s not Ready after %s: %w\n%s", name, timeout, last, describe(k, name))
}

func readyPods(k realpod.Kubectl, name string) ([]Pod, error) {
	out, err := k.Run("", "get", "pods", "-l", "app.kubernetes.io/instance="+name, "-o", "json")
	if err != nil {
		return nil, err
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, err
	}
	var pods []Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		if !ready || p.Status.PodIP == "" {
			return nil, fmt.Errorf("pod %s not Ready (%s)", p.Name, p.Status.Phase)
		}
		pod := Pod{Name: p.Name, IP: p.Status.PodIP, Ports: map[string]int{}, ImageIDs: map[string]string{}}
		for _, c := range p.Spec.Containers {
			pod.Containers = append(pod.Containers, c.Name)
			for _, port := range c.Ports {
				if port.Name != "" {
					pod.Ports[port.Name] = int(port.ContainerPort)
				}
			}
		}
		for _, s := range p.Status.ContainerStatuses {
			pod.ImageIDs[s.Name] = s.ImageID
		}
		pods = append(pods, pod)
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no pod of %s", name)
	}
	return pods, nil
}

// describe is what a failure report needs: the app's pods and their events.
func describe(k realpod.Kubectl, name string) string {
	out, _ := k.Run("", "describe", "pods", "-l", "app.kubernetes.io/instance="+name)
	if len(out) > 6000 {
		out = out[len(out)-6000:]
	}
	return out
}

// ManifestPulls counts the manifest GETs by containerd for repo (e.g.
// "shop-api") in the registry's log of the cluster in clusterDir: each
// image pull by the kubelet makes at least one.
func ManifestPulls(clusterDir, repo string) (int, error) {
	b, err := os.ReadFile(filepath.Join(clusterDir, "logs", "registry.log"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"GET /v2/`+repo+`/manifests/`) && strings.Contains(l, `"containerd/`) {
			n++
		}
	}
	return n, nil
}
