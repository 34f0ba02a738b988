package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
)

// replicas is how many real pods of the sample the demo runs.
const replicas = 2

// runCluster is the demo on real pods of the single-node cluster of
// test/framework/cluster. It takes the cluster down at the end if it brought it up,
// but leaves it up after a failure, for a look.
func (d *demo) runCluster() (err error) {
	root := controlplane.RepoRoot()
	out := &indented{w: os.Stdout}
	c := &cluster.Cluster{Dir: cluster.DirFromEnv(), Repo: root, Out: out}

	d.say("build kube-controller-manager, kube-scheduler, kubelet and kube-proxy into bin/ (hack/build-tools.sh cluster: 2 to 12 minutes the first time on 2 cores, then cached)")
	build := exec.Command(filepath.Join(root, "hack", "build-tools.sh"), "cluster")
	build.Stdout, build.Stderr = out, out
	if err := build.Run(); err != nil {
		return fmt.Errorf("hack/build-tools.sh cluster: %w", err)
	}

	d.say("bring the cluster up: containerd, etcd, kube-apiserver, controller manager, scheduler, kubelet and kube-proxy in the network namespace %s", cluster.NetNS)
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

	d.say("install aether-devhot as a user would: helm install charts/aether-devhot with certManager.enabled=false, then go run ./certs")
	if err := c.Install(); err != nil {
		return err
	}

	k := realpod.Kubectl{Bin: filepath.Join(root, "bin", "kubectl"), Kubeconfig: c.Kubeconfig(), Namespace: ns}
	d.say("namespace %s, enforcing Pod Security restricted; versions 1-4 of test/testdata/app served by a pod behind the Service artifacts", ns)
	for _, args := range [][]string{
		{"delete", "namespace", ns, "--ignore-not-found", "--wait"},
		{"create", "namespace", ns},
		{"label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"},
	} {
		if _, err := k.Run("", args...); err != nil {
			return err
		}
	}
	arts, err := realpod.ServeArtifacts(k, d.dir, 4)
	if err != nil {
		return err
	}
	fmt.Printf("    %s ... %s (by the Service's ClusterIP: this cluster has no DNS)\n", arts.URL(1), arts.URL(4))

	d.say("kubectl apply the labelled sample test/testdata/deployment.yaml, with %d replicas", replicas)
	manifest, err := realpod.SampleManifest(replicas)
	if err != nil {
		return err
	}
	before, err := k.Run(unlabel(manifest), "apply", "--dry-run=server", "-o", "json", "-f", "-")
	if err != nil {
		return err
	}
	// kubectl itself, for the webhook's warnings on stderr.
	apply := exec.Command(k.Bin, "--kubeconfig", k.Kubeconfig, "-n", ns, "apply", "-f", "-")
	apply.Stdin = strings.NewReader(manifest)
	applied, err := apply.CombinedOutput()
	fmt.Print(indent(string(applied)))
	if err != nil {
		return fmt.Errorf("kubectl apply: %w", err)
	}

	d.say("the mutation: the unlabelled sample (server dry-run) against what the webhook stored")
	after, err := k.Run("", "get", "deployment", realpod.Deployment, "-o", "json")
	if err != nil {
		return err
	}
	if err := d.diff(before, after); err != nil {
		return err
	}

	d.say("push version 1 (kubectl annotate digest + artifact-url): the kubelet starts the fetcher sidecar, then the app once version 1 is live")
	start := time.Now()
	pods, err := realpod.DeploySample(k, replicas, arts)
	if err != nil {
		return err
	}
	fmt.Printf("    %d pods Running in %.1fs\n", len(pods), time.Since(start).Seconds())
	containers, err := k.Run("", "get", "pod", pods[0], "-o",
		`jsonpath={range .spec.initContainers[*]}initContainer {.name}: restartPolicy {.restartPolicy} (a native sidecar), image {.image}{"\n"}{end}{range .spec.containers[*]}container {.name}: {.command}{"\n"}{end}`)
	if err != nil {
		return err
	}
	fmt.Print(indent("pod " + pods[0] + ":\n" + containers))
	for _, pod := range pods {
		a, err := k.Answer(pod)
		if err != nil {
			return err
		}
		fmt.Printf("    pod %s answers version %d (pid %d, start #%d)\n", pod, a.Version, a.PID, a.Starts)
	}

	d.say("hot-reload versions 2, 3 and 4: annotate, while each pod asks its app every 5 ms, from inside, until it answers the new version")
	var lat []time.Duration
	for v := 2; v <= 4; v++ {
		took, err := realpod.PatchAndWait(k, pods, v, arts.URL(v), arts.Versions[v].Digest, 10*time.Second)
		if err != nil {
			return err
		}
		var each []string
		for _, pod := range pods {
			each = append(each, fmt.Sprintf("%s %d ms", pod, took[pod].Milliseconds()))
		}
		lat = append(lat, realpod.Slowest(took))
		fmt.Printf("    version %d live in both pods in %4d ms (%s)\n", v, realpod.Slowest(took).Milliseconds(), strings.Join(each, ", "))
	}
	logs, err := k.Run("", "logs", pods[0], "-c", "aether-fetcher")
	if err != nil {
		return err
	}
	fmt.Print(indent("kubectl logs " + pods[0] + " -c aether-fetcher | grep REFRESH_\n" + grep(logs, "REFRESH_")))
	podList, err := k.Run("", "get", "pods", "-l", "app="+realpod.Deployment)
	if err != nil {
		return err
	}
	fmt.Print(indent("kubectl get pods: the same pods; a reload restarts node inside the app container, not the container\n" + podList))

	d.say("summary")
	gen, err := k.Run("", "get", "deployment", realpod.Deployment, "-o", "jsonpath={.metadata.generation}")
	if err != nil {
		return err
	}
	generation, err := strconv.ParseInt(gen, 10, 64)
	if err != nil {
		return fmt.Errorf("generation %q: %w", gen, err)
	}
	summary(lat, generation)
	fmt.Printf("    demo files in %s\n", d.dir)
	return nil
}
