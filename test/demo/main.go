// Command demo is `make demo`: on the local control plane it starts the
// webhook, applies the labelled sample Deployment, shows the mutation as a
// diff, runs one pod of it as local processes (the fetcher with the token a
// real pod would get, and the app under real node --watch), then pushes
// three versions of the code and prints how long each took to go live.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/artifact"
	"github.com/aether-dev/aether-devhot/test/controlplane"
	"github.com/aether-dev/aether-devhot/test/localpod"
)

const ns = "demo"

type demo struct {
	dir     string
	cp      *controlplane.ControlPlane
	cleanup []func()
	step    int
}

func main() {
	d := &demo{}
	err := d.run()
	for i := len(d.cleanup) - 1; i >= 0; i-- {
		d.cleanup[i]()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nFAILED at step %d: %v\nlogs: %s\n", d.step, err, d.dir)
		os.Exit(1)
	}
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Printf("\n[%d] %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) run() error {
	root := controlplane.RepoRoot()
	var err error
	if d.dir, err = os.MkdirTemp("", "aether-demo-"); err != nil {
		return err
	}

	d.say("build the fetcher into bin/")
	fetcherBin := filepath.Join(root, "bin", "fetcher")
	if out, err := exec.Command("go", "build", "-o", fetcherBin, "./cmd/fetcher").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/fetcher: %v\n%s", err, out)
	}

	d.say("start etcd and kube-apiserver (pinned, from bin/) with envtest")
	start := time.Now()
	if d.cp, err = controlplane.Start(d.dir); err != nil {
		return err
	}
	d.cleanup = append(d.cleanup, func() { _ = d.cp.Stop() })
	v, _ := d.cp.Clientset.Discovery().ServerVersion()
	fmt.Printf("    kube-apiserver %s ready in %s\n", v.GitVersion, time.Since(start).Round(time.Millisecond))

	d.say("start the webhook behind TLS and register it (objectSelector aether.dev/dev-hot=true)")
	stop, err := d.cp.StartWebhook(d.cp.WebhookOptions())
	if err != nil {
		return err
	}
	d.cleanup = append(d.cleanup, stop)

	d.say("kubectl apply -f test/testdata/deployment.yaml (labelled aether.dev/dev-hot=true)")
	if _, _, err := d.cp.Run("", "create", "namespace", ns); err != nil {
		return err
	}
	manifest, err := os.ReadFile(filepath.Join(root, "test", "testdata", "deployment.yaml"))
	if err != nil {
		return err
	}
	before, _, err := d.cp.Run(strings.Replace(string(manifest), `    aether.dev/dev-hot: "true"`+"\n", "", 1),
		"-n", ns, "apply", "--dry-run=server", "-o", "json", "-f", "-")
	if err != nil {
		return err
	}
	out, stderr, err := d.cp.Run(string(manifest), "-n", ns, "apply", "-f", "-")
	if err != nil {
		return err
	}
	fmt.Print(indent(out + stderr))

	d.say("the mutation: the unlabelled sample (server dry-run) against what the webhook stored")
	after, _, err := d.cp.Run("", "-n", ns, "get", "deployment", "hello", "-o", "json")
	if err != nil {
		return err
	}
	if err := d.diff(before, after); err != nil {
		return err
	}

	dep, err := d.cp.Clientset.AppsV1().Deployments(ns).Get(context.Background(), "hello", metav1.GetOptions{})
	if err != nil {
		return err
	}
	sa := dep.Spec.Template.Spec.ServiceAccountName
	d.say("wait for the reconciler's ServiceAccount %s, Role and RoleBinding; mint the pod's token", sa)
	kubeconfig := filepath.Join(d.dir, "fetcher.kubeconfig")
	if err := retry(15*time.Second, func() error { return d.cp.ServiceAccountKubeconfig(ns, sa, kubeconfig) }); err != nil {
		return err
	}
	if err := retry(15*time.Second, func() error {
		_, _, err := d.cp.Run("", "-n", ns, "get", "rolebinding", "aether-devhot-hello")
		return err
	}); err != nil {
		return err
	}

	arts, err := artifact.NewServer()
	if err != nil {
		return err
	}
	d.cleanup = append(d.cleanup, func() { _ = arts.Close() })
	appDir := filepath.Join(root, "test", "testdata", "app")

	d.say("push version 1 (kubectl annotate digest + artifact-url), start the fetcher, then the app once it is ready")
	if _, err := d.push(arts, appDir, 1); err != nil {
		return err
	}
	pod, err := localpod.Start(dep, localpod.Options{
		Name: "hello-local-0", Namespace: ns, Kubeconfig: kubeconfig, FetcherBin: fetcherBin, Dir: filepath.Join(d.dir, "pod"),
	})
	if err != nil {
		return err
	}
	d.cleanup = append(d.cleanup, pod.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pod.WaitReady(ctx); err != nil {
		return err
	}
	if err := pod.StartApp(dep, "app"); err != nil {
		return err
	}
	a, err := pod.WaitVersion(ctx, 1)
	if err != nil {
		return err
	}
	fmt.Printf("    app answers version %d (pid %d) on 127.0.0.1:%d\n", a.Version, a.PID, pod.AppPort)

	d.say("hot-reload versions 2, 3 and 4: annotate, then poll the app every 5 ms until it answers the new version")
	var lat []time.Duration
	for v := 2; v <= 4; v++ {
		t0, err := d.push(arts, appDir, v)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		a, err := pod.WaitVersion(ctx, v)
		cancel()
		if err != nil {
			return err
		}
		l := time.Since(t0)
		lat = append(lat, l)
		fmt.Printf("    version %d live in %4d ms (pid %d, start #%d)\n", v, l.Milliseconds(), a.PID, a.Starts)
	}
	fmt.Println(indent(grep(pod.FetcherLog(), "REFRESH_")))

	d.say("summary")
	sorted := append([]time.Duration(nil), lat...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	gen, _ := d.cp.Clientset.AppsV1().Deployments(ns).Get(context.Background(), "hello", metav1.GetOptions{})
	fmt.Printf("    %d reloads, median %d ms, max %d ms; no rollout: the pod template is unchanged (generation %d counts annotation updates)\n",
		len(lat), sorted[len(sorted)/2].Milliseconds(), sorted[len(sorted)-1].Milliseconds(), gen.Generation)
	fmt.Printf("    logs kept in %s\n", d.dir)
	return nil
}

// push serves version v and annotates the Deployment with it; it returns
// when kubectl returned, the moment the latency is measured from.
func (d *demo) push(arts *artifact.Server, appDir string, v int) (time.Time, error) {
	a, err := artifact.App(appDir, v)
	if err != nil {
		return time.Time{}, err
	}
	url := arts.Put(fmt.Sprintf("hello-v%d.tar.gz", v), a.Data)
	t0 := time.Now()
	_, _, err = d.cp.Run("", "-n", ns, "annotate", "--overwrite", "deployment", "hello",
		annotations.Digest+"="+a.Digest, annotations.ArtifactURL+"="+url)
	return t0, err
}

// diff prints a unified diff of the two objects' specs and annotations,
// without the fields the API server sets on every object.
func (d *demo) diff(before, after string) error {
	files := []string{filepath.Join(d.dir, "before.yaml"), filepath.Join(d.dir, "after.yaml")}
	for i, js := range []string{before, after} {
		var dep appsv1.Deployment
		if err := json.Unmarshal([]byte(js), &dep); err != nil {
			return err
		}
		delete(dep.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
		if rec, ok := dep.Annotations[annotations.Injected]; ok {
			dep.Annotations[annotations.Injected] = fmt.Sprintf("<%d bytes of JSON: what was replaced>", len(rec))
		}
		view := map[string]any{"metadata": map[string]any{"labels": dep.Labels, "annotations": dep.Annotations}, "spec": dep.Spec}
		y, err := yaml.Marshal(view)
		if err != nil {
			return err
		}
		if err := os.WriteFile(files[i], y, 0o644); err != nil {
			return err
		}
	}
	out, err := exec.Command("diff", "-u", "--label", "unlabelled", "--label", "mutated", files[0], files[1]).Output()
	if len(out) == 0 && err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	fmt.Print(indent(string(out)))
	return nil
}

func retry(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
