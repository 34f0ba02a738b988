package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// runLocal is the demo on the local control plane, with one pod of the
// sample run as local processes.
func (d *demo) runLocal() error {
	root := controlplane.RepoRoot()

	d.say("build the fetcher into bin/")
	fetcherBin := filepath.Join(root, "bin", "fetcher")
	if out, err := exec.Command("go", "build", "-o", fetcherBin, "./cmd/fetcher").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/fetcher: %v\n%s", err, out)
	}

	d.say("start etcd and kube-apiserver (pinned, from bin/) with envtest")
	start := time.Now()
	cp, err := controlplane.Start(d.dir)
	if err != nil {
		return err
	}
	d.cleanup = append(d.cleanup, func() { _ = cp.Stop() })
	v, _ := cp.Clientset.Discovery().ServerVersion()
	fmt.Printf("    kube-apiserver %s ready in %s\n", v.GitVersion, time.Since(start).Round(time.Millisecond))

	d.say("start the webhook behind TLS and register it (objectSelector aether.dev/dev-hot=true)")
	stop, err := cp.StartWebhook(cp.WebhookOptions())
	if err != nil {
		return err
	}
	d.cleanup = append(d.cleanup, stop)

	d.say("kubectl apply -f test/testdata/deployment.yaml (labelled aether.dev/dev-hot=true)")
	if _, _, err := cp.Run("", "create", "namespace", ns); err != nil {
		return err
	}
	manifest, err := os.ReadFile(filepath.Join(root, "test", "testdata", "deployment.yaml"))
	if err != nil {
		return err
	}
	before, _, err := cp.Run(unlabel(string(manifest)), "-n", ns, "apply", "--dry-run=server", "-o", "json", "-f", "-")
	if err != nil {
		return err
	}
	out, stderr, err := cp.Run(string(manifest), "-n", ns, "apply", "-f", "-")
	if err != nil {
		return err
	}
	fmt.Print(indent(out + stderr))

	d.say("the mutation: the unlabelled sample (server dry-run) against what the webhook stored")
	after, _, err := cp.Run("", "-n", ns, "get", "deployment", "hello", "-o", "json")
	if err != nil {
		return err
	}
	if err := d.diff(before, after); err != nil {
		return err
	}

	dep, err := cp.Clientset.AppsV1().Deployments(ns).Get(context.Background(), "hello", metav1.GetOptions{})
	if err != nil {
		return err
	}
	sa := dep.Spec.Template.Spec.ServiceAccountName
	d.say("wait for the reconciler's ServiceAccount %s, Role and RoleBinding; mint the pod's token", sa)
	kubeconfig := filepath.Join(d.dir, "fetcher.kubeconfig")
	if err := wait.Poll(15*time.Second, func() error { return cp.ServiceAccountKubeconfig(ns, sa, kubeconfig) }); err != nil {
		return err
	}
	if err := wait.Poll(15*time.Second, func() error {
		_, _, err := cp.Run("", "-n", ns, "get", "rolebinding", "aether-devhot-hello")
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
	// push serves version v and annotates the Deployment with it; it
	// returns when kubectl returned, the moment the latency is measured from.
	push := func(v int) (time.Time, error) {
		a, err := artifact.App(appDir, v)
		if err != nil {
			return time.Time{}, err
		}
		url := arts.Put(fmt.Sprintf("hello-v%d.tar.gz", v), a.Data)
		t0 := time.Now()
		_, _, err = cp.Run("", "-n", ns, "annotate", "--overwrite", "deployment", "hello",
			annotations.Digest+"="+a.Digest, annotations.ArtifactURL+"="+url)
		return t0, err
	}

	d.say("push version 1 (kubectl annotate digest + artifact-url), start the fetcher, then the app once it is ready")
	if _, err := push(1); err != nil {
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
		t0, err := push(v)
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
	gen, err := cp.Clientset.AppsV1().Deployments(ns).Get(context.Background(), "hello", metav1.GetOptions{})
	if err != nil {
		return err
	}
	summary(lat, gen.Generation)
	fmt.Printf("    logs kept in %s\n", d.dir)
	return nil
}
