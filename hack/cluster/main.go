// Command cluster runs the real single-node cluster of test/framework/cluster:
//
//	cluster check    say whether this machine can run it, and why not
//	                 (exit status 1); changes nothing
//	cluster up       bring it up, or reuse the running one
//	cluster images   rebuild the images, import them into the running cluster
//	                 and push the Node.js bases to its registry
//	cluster install  install the product as a user would: helm install with
//	                 certManager.enabled=false, then go run ./cmd/certs
//	cluster down     stop it and undo every host change; fails if the host
//	                 is not clean afterwards
//
// The cluster lives in $AETHER_CLUSTER_DIR (default /tmp/aether-cluster);
// its admin kubeconfig is kubeconfig there. Make targets: cluster-up,
// cluster-images, cluster-down, test-cluster; make test runs test-cluster
// when check says yes.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: cluster check|up|images|install|down")
		os.Exit(2)
	}
	dir := cluster.DirFromEnv()
	c := &cluster.Cluster{Dir: dir, Repo: controlplane.RepoRoot(), Out: os.Stdout}
	var err error
	switch os.Args[1] {
	case "check":
		if err = cluster.Supported(); err == nil {
			fmt.Println("this machine can run the real single-node cluster")
		}
	case "up":
		err = c.Up()
	case "down":
		err = c.Down()
	case "images":
		start := time.Now()
		var tars []string
		if !c.Running() {
			err = fmt.Errorf("no cluster runs in %s: run make cluster-up first", dir)
		} else if tars, err = c.BuildImages(); err == nil {
			if err = c.ImportImages(tars); err == nil {
				err = c.PushBases()
			}
		}
		if err == nil {
			fmt.Printf("images built and imported, bases pushed to %s in %.1fs\n", cluster.RegistryAddr, time.Since(start).Seconds())
		}
	case "install":
		err = c.Install()
	default:
		err = fmt.Errorf("unknown command %q: want check, up, images, install or down", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}
