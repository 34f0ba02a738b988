package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/apps"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// The demo's app on real pods: an express service with its dependencies
// in its image, started by the image's CMD (test/testdata/apps/shop-api).
const (
	service  = "shop-api"
	replicas = 2
	// message is the file the demo edits, as a developer would.
	message = "src/message.js"
)

// runCluster is the demo on real pods of the single-node cluster of
// test/framework/cluster. It takes the cluster down at the end if it brought it up,
// but leaves it up after a failure, for a look.
func (d *demo) runCluster() (err error) {
	root := controlplane.RepoRoot()
	out := &indented{w: os.Stdout}
	c := &cluster.Cluster{Dir: cluster.DirFromEnv(), Repo: root, Out: out}

	d.say("build kube-controller-manager, kube-scheduler, kubelet, kube-proxy and the registry into bin/ (hack/build-tools.sh cluster: 2 to 12 minutes the first time on 2 cores, then cached)")
	build := exec.Command(filepath.Join(root, "hack", "build-tools.sh"), "cluster")
	build.Stdout, build.Stderr = out, out
	if err := build.Run(); err != nil {
		return fmt.Errorf("hack/build-tools.sh cluster: %w", err)
	}

	d.say("bring the cluster up: containerd, etcd, kube-apiserver, controller manager, scheduler, kubelet, kube-proxy and a registry in the network namespace %s", cluster.NetNS)
	reused := c.Running()
	if err := c.Up(); err != nil {
		return err
	}
	defer func() {
		switch {
		case reused:
			fmt.Printf("\nthe cluster was up before the demo and stays up: KUBECONFIG=%s\n", c.Kubeconfig())
		case err != nil:
			fmt.Printf("\nthe cluster stays up for a look: KUBECONFIG=%s, logs in %s; make cluster-down takes it down\n",
				c.Kubeconfig(), filepath.Join(c.Dir, "logs"))
		default:
			d.say("take the cluster down and undo every host change (make cluster-down)")
			err = c.Down()
		}
	}()

	d.say("install aether-devhot as a user would: helm install charts/aether-devhot with certManager.enabled=false, then go run ./cmd/certs")
	if err := c.Install(); err != nil {
		return err
	}

	k := realpod.Kubectl{Bin: filepath.Join(root, "bin", "kubectl"), Kubeconfig: c.Kubeconfig(), Namespace: ns}
	d.say("namespace %s, enforcing Pod Security restricted", ns)
	for _, args := range [][]string{
		{"delete", "namespace", ns, "--ignore-not-found", "--wait"},
		{"create", "namespace", ns},
		{"label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"},
	} {
		if _, err := k.Run("", args...); err != nil {
			return err
		}
	}

	d.say("build the express service %s from its Dockerfile (FROM node:20, npm ci, CMD [\"node\",\"src/server.js\"]) and push it to the cluster's registry", service)
	ref, err := apps.Push(service)
	if err != nil {
		return err
	}
	fmt.Printf("    %s\n", ref)

	d.say("deploy it as its chart would, unlabelled, with %d replicas: no command, the image decides", replicas)
	if _, err := apps.Deploy(k, service, 3*time.Minute, ref); err != nil {
		return err
	}
	if _, err := k.Run("", "scale", "deployment", service, fmt.Sprintf("--replicas=%d", replicas)); err != nil {
		return err
	}
	pods, err := d.answers(k, "the image's own code")
	if err != nil {
		return err
	}
	before, err := k.Run("", "get", "deployment", service, "-o", "json")
	if err != nil {
		return err
	}

	plugin, err := controlplane.GoBuild(d.dir, "./cmd/kubectl-devhot")
	if err != nil {
		return err
	}
	devhot := func(args ...string) (string, error) {
		cmd := exec.Command(plugin, append([]string{"--kubeconfig", k.Kubeconfig, "-n", ns}, args...)...)
		b, err := cmd.CombinedOutput()
		fmt.Print(indent("$ kubectl devhot " + strings.Join(args, " ") + "\n" + string(b)))
		if err != nil {
			return string(b), fmt.Errorf("kubectl devhot %s: %w", strings.Join(args, " "), err)
		}
		return string(b), nil
	}

	d.say("kubectl devhot enable %s: the label alone; the webhook reads the image's command from the registry and says what it guessed", service)
	if _, err := devhot("enable", service); err != nil {
		return err
	}
	after, err := k.Run("", "get", "deployment", service, "-o", "json")
	if err != nil {
		return err
	}
	d.say("the mutation: the Deployment before the label against after")
	if err := d.diff(before, after); err != nil {
		return err
	}
	d.say("the rollout: the new pods run the fetcher sidecar, and the app under node --watch, still on the image's code (release zero)")
	if pods, err = d.answers(k, "the image's code under dev-hot"); err != nil {
		return err
	}
	containers, err := k.Run("", "get", "pod", pods[0].Name, "-o",
		`jsonpath={range .spec.initContainers[*]}initContainer {.name}: restartPolicy {.restartPolicy} (a native sidecar){"\n"}{end}{range .spec.containers[*]}container {.name}: command {.command} args {.args}{"\n"}{end}`)
	if err != nil {
		return err
	}
	fmt.Print(indent("pod " + pods[0].Name + ":\n" + containers))

	src := filepath.Join(d.dir, service)
	if err := apps.Copy(service, src); err != nil {
		return err
	}
	d.say("edit %s/%s three times, and kubectl devhot push each: pack, upload through the API server to the store, annotate, wait for both pods", service, message)
	var lat []time.Duration
	for v := 1; v <= 3; v++ {
		msg := fmt.Sprintf("edit %d, live without a rollout", v)
		start := time.Now()
		if err := os.WriteFile(filepath.Join(src, message), fmt.Appendf(nil, "module.exports = %q;\n", msg), 0o644); err != nil {
			return err
		}
		if _, err := devhot("push", service, src); err != nil {
			return err
		}
		if err := wait.Poll(10*time.Second, func() error {
			for _, p := range pods {
				if a, err := p.Answer(); err != nil || a.Message != msg {
					return fmt.Errorf("pod %s: %+v, %v", p.Name, a, err)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		took := time.Since(start)
		lat = append(lat, took)
		fmt.Printf("    edit %d answers from both pods %d ms after the save\n", v, took.Milliseconds())
	}
	logs, err := k.Run("", "logs", pods[0].Name, "-c", "aether-fetcher")
	if err != nil {
		return err
	}
	fmt.Print(indent("kubectl logs " + pods[0].Name + " -c aether-fetcher | grep REFRESH_\n" + grep(logs, "REFRESH_")))
	podList, err := k.Run("", "get", "pods", "-l", "app.kubernetes.io/instance="+service)
	if err != nil {
		return err
	}
	fmt.Print(indent("kubectl get pods: the same pods; a push restarts node inside the app container, not the container\n" + podList))

	d.say("summary")
	restarts, err := k.Run("", "get", "pods", "-l", "app.kubernetes.io/instance="+service, "-o", "jsonpath={.items[*].status.containerStatuses[*].restartCount}")
	if err != nil {
		return err
	}
	total := 0
	for _, f := range strings.Fields(restarts) {
		n, _ := strconv.Atoi(f)
		total += n
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	fmt.Printf("    %d edits live in both pods, median %d ms, max %d ms (save → both pods answer, the CLI's process start included); the same %d pods, %d container restarts\n",
		len(lat), sorted[len(sorted)/2].Milliseconds(), sorted[len(sorted)-1].Milliseconds(), len(pods), total)
	fmt.Printf("    demo files in %s\n", d.dir)
	return nil
}

// answers waits for the service's pods to be Ready and prints what each
// answers, as what.
func (d *demo) answers(k realpod.Kubectl, what string) ([]apps.Pod, error) {
	pods, err := apps.WaitReady(k, service, 3*time.Minute)
	if err != nil {
		return nil, err
	}
	for _, p := range pods {
		a, err := p.Answer()
		if err != nil {
			return nil, err
		}
		fmt.Printf("    pod %s (%s) answers %q (pid %d): %s\n", p.Name, p.IP, a.Message, a.PID, what)
	}
	return pods, nil
}
