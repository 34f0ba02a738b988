package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/bench"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
)

const realNS = "bench-real-h1"

// realPodsCluster is the cluster of test/framework/cluster that the real-pod phase
// uses: the directory of $AETHER_CLUSTER_KUBECONFIG when it is set, else
// that of cluster.DirFromEnv.
func (b *runner) realPodsCluster() *cluster.Cluster {
	dir := cluster.DirFromEnv()
	if kc := os.Getenv(cluster.KubeconfigEnv); kc != "" {
		dir = filepath.Dir(kc)
	}
	return &cluster.Cluster{Dir: dir, Repo: b.root, Out: os.Stderr}
}

// startRealCluster builds the cluster's binaries, brings c up (or reuses
// it if it runs) and installs the product; stop takes down a cluster that
// it brought up, as it does at once when that fails.
func (b *runner) startRealCluster(c *cluster.Cluster) (stop func(), err error) {
	build := exec.CommandContext(b.ctx, filepath.Join(b.root, "hack", "build-tools.sh"), "cluster")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("hack/build-tools.sh cluster: %w", err)
	}
	running := c.Running()
	stop = func() {
		if !running {
			progress("take the real cluster down")
			if err := c.Down(); err != nil {
				fmt.Fprintf(os.Stderr, "    FAILED: %v\n", err)
			}
		}
	}
	if err = c.Up(); err == nil {
		err = c.Install()
	}
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// realPods is H1 on real pods, the method of test/e2e's TestClusterH1H2:
// the sample with 2 replicas in a namespace that enforces Pod Security
// "restricted", artifacts from a pod behind a Service; for each of
// realpod.Patches versions, a version watcher inside each pod polls its app
// every 5 ms, then kubectl annotate patches the digest, and the latency is
// until the last pod answers. The namespace is deleted at the end.
func (b *runner) realPods(c *cluster.Cluster) error {
	k := realpod.Kubectl{Bin: filepath.Join(b.root, "bin", "kubectl"), Kubeconfig: c.Kubeconfig(), Namespace: realNS}
	if _, err := k.Run("", "create", "namespace", realNS); err != nil {
		return err
	}
	defer func() {
		progress("delete namespace %s on the real cluster", realNS)
		if _, err := k.Run("", "delete", "namespace", realNS, "--timeout=120s"); err != nil {
			fmt.Fprintf(os.Stderr, "    %v\n", err)
		}
	}()
	if _, err := k.Run("", "label", "namespace", realNS, "pod-security.kubernetes.io/enforce=restricted"); err != nil {
		return err
	}
	dir := filepath.Join(b.dir, "real-pods")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	arts, err := realpod.ServeArtifacts(k, dir, 1+realpod.Patches)
	if err != nil {
		return err
	}
	pods, err := realpod.DeploySample(k, 2, arts)
	if err != nil {
		return err
	}
	for v := 2; v <= 1+realpod.Patches; v++ {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		each, err := realpod.PatchAndWait(k, pods, v, arts.URL(v), arts.Versions[v].Digest, seedH1Ceiling)
		if err != nil {
			return fmt.Errorf("version %d: %w", v, err)
		}
		b.res.realH1 = append(b.res.realH1, realpod.Slowest(each))
	}
	lat := b.res.realH1
	fmt.Fprintf(os.Stderr, "    real pods: %d patches, p50 %v, p95 %v, max %v\n", len(lat),
		bench.Percentile(lat, 50).Round(time.Millisecond), bench.Percentile(lat, 95).Round(time.Millisecond),
		bench.Percentile(lat, 100).Round(time.Millisecond))
	return nil
}
