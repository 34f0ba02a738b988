package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Down stops the cluster and undoes every host change, in the order of
// REAL-CLUSTER.md. It runs from any state, a failed up included, and goes
// on past errors; it returns them all, and an error if the host is not
// clean afterwards (see Leftovers).
func (c *Cluster) Down() error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	h, err := loadHost(c.hostFile())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read the saved host state: %w", err)
	}
	var errs []error
	step := func(name string, f func() []error) {
		_ = c.phase(name, func() error {
			e := f()
			errs = append(errs, e...)
			return errors.Join(e...)
		})
	}
	total := time.Now()
	step("stop coredns, kube-proxy, kubelet", func() []error { return c.stopDaemons("coredns", "kube-proxy", "kubelet") })
	step("kill containers (ctr)", c.killContainers)
	step("stop control plane, registry, containerd", func() []error {
		return c.stopDaemons("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd", "registry", "containerd")
	})
	step("stray shims and container processes", c.killStrays)
	step("unmount "+c.Dir, func() []error {
		var e []error
		for _, m := range mountsUnder(c.Dir) {
			if err := unmount(m); err != nil {
				e = append(e, err)
			}
		}
		return e
	})
	step("cgroups kubepods", func() []error { return removeCgroups(h) })
	step("links and namespace "+NetNS, func() []error { return teardownNetwork(h) })
	if h != nil {
		step("sysctls", func() []error { return restoreSysctls(h) })
		step("iptables KUBE-* chains (root namespace)", func() []error { return removeRootKubeChains(h) })
		step("machine-wide paths", func() []error { return removeMachinePaths(h) })
	}
	step("remove "+c.Dir, func() []error {
		if len(mountsUnder(c.Dir)) > 0 {
			return []error{fmt.Errorf("%s still has mounts: kept", c.Dir)}
		}
		// The lock file goes with the directory; the lock itself is held
		// through the open descriptor until unlock.
		if err := os.RemoveAll(c.Dir); err != nil {
			return []error{err}
		}
		return nil
	})
	fmt.Fprintf(c.Out, "cluster down in %.1fs\n", time.Since(total).Seconds())
	if left := c.Leftovers(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("host not clean after down:\n  %s", strings.Join(left, "\n  ")))
	} else {
		fmt.Fprintln(c.Out, "host clean: no namespace, link, process, mount, kubepods cgroup or KUBE-* chain of the cluster left")
	}
	return errors.Join(errs...)
}

func (c *Cluster) stopDaemons(names ...string) []error {
	var errs []error
	for _, n := range names {
		if err := c.stopDaemon(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// killContainers kills and removes every task and container in
// containerd's k8s.io namespace, while containerd still runs.
func (c *Cluster) killContainers() []error {
	if _, ok := c.daemon("containerd"); !ok {
		return nil
	}
	ctr := func(args ...string) (string, error) {
		out, err := exec.Command("ctr", append([]string{"-a", c.containerdSock(), "-n", "k8s.io"}, args...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	var errs []error
	tasks, err := ctr("tasks", "ls", "-q")
	if err != nil {
		return []error{err}
	}
	for _, id := range strings.Fields(tasks) {
		_, _ = ctr("tasks", "kill", "-a", "-s", "SIGKILL", id)
	}
	for _, id := range strings.Fields(tasks) {
		var err error
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			// containerd deletes a killed task of the CRI itself.
			if _, err = ctr("tasks", "delete", "-f", id); err == nil || strings.Contains(err.Error(), "not found") {
				err = nil
				break
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	containers, err := ctr("containers", "ls", "-q")
	if err != nil {
		return append(errs, err)
	}
	for _, id := range strings.Fields(containers) {
		if _, err := ctr("containers", "delete", id); err != nil && !strings.Contains(err.Error(), "not found") {
			errs = append(errs, err)
		}
	}
	return errs
}

// killStrays kills what outlived containerd: the shims of this cluster's
// socket, and any process still in a kubepods cgroup.
func (c *Cluster) killStrays() []error {
	var errs []error
	pids := append(processesMatching("containerd-shim", c.containerdSock()), cgroupProcs()...)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range pids {
		if err := stopPID(pid, "", 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Leftovers lists what of the cluster is still on the host: the namespace,
// the veth, daemons or shims, mounts under Dir, kubepods cgroups, and
// KUBE-* chains in the root namespace.
func (c *Cluster) Leftovers() []string {
	var left []string
	if netnsExists() {
		left = append(left, "network namespace "+NetNS)
	}
	if linkExists(hostVeth) {
		left = append(left, "link "+hostVeth)
	}
	for _, name := range components {
		if d, ok := c.daemon(name); ok {
			left = append(left, fmt.Sprintf("%s pid %d", name, d.PID))
		}
	}
	for _, pid := range processesMatching("containerd-shim", c.containerdSock()) {
		left = append(left, fmt.Sprintf("containerd shim pid %d", pid))
	}
	for _, pid := range processesMatching(filepath.Join(c.Dir, "etc")) {
		left = append(left, fmt.Sprintf("process %d using %s", pid, filepath.Join(c.Dir, "etc")))
	}
	for _, m := range mountsUnder(c.Dir) {
		left = append(left, "mount "+m)
	}
	for _, cg := range kubepodsCgroups() {
		left = append(left, "cgroup "+cg)
	}
	if chains, _ := rootKubeChains(); len(chains) > 0 {
		left = append(left, "iptables chains in the root namespace: "+strings.Join(chains, ", "))
	}
	return left
}
