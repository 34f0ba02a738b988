package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// hostState is what the machine looked like before the first up, saved in
// the cluster directory so that down restores exactly that, even from
// another process or after a failed up.
type hostState struct {
	// Sysctls are the global values the kubelet may set, by /proc/sys path.
	Sysctls map[string]string
	// Paths are the machine-wide paths the kubelet, containerd and CNI
	// create, with whether each existed.
	Paths map[string]bool
	// Cgroups are the kubepods cgroup directories, with whether each existed.
	Cgroups         map[string]bool
	NetnsDirExisted bool
	NetnsDirMounted bool
	// Chains are the KUBE-* iptables chains of the root namespace, which
	// only a daemon started outside NetNS would add.
	Chains []string
}

// globalSysctls are the kubelet's kernel tunables (setupKernelTunables),
// plus the conntrack limit kube-proxy may raise; all are machine-wide.
var globalSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/netfilter/nf_conntrack_max",
}

// machinePaths are created outside the cluster directory whatever the
// flags say (REAL-CLUSTER.md, "Host changes"), and iptables' lock file,
// which the first iptables command on the machine makes.
var machinePaths = []string{
	"/var/log/pods", "/var/log/containers", "/var/lib/kubelet", "/run/containerd",
	"/var/lib/cni", "/opt/cni", "/etc/cni", "/run/xtables.lock",
}

// kubepodsCgroups lists the kubelet's top cgroup in every hierarchy
// (cgroup v1 here, with the v2 hierarchy at unified/).
func kubepodsCgroups() []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	return dirs
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func captureHost() (*hostState, error) {
	h := &hostState{Sysctls: map[string]string{}, Paths: map[string]bool{}, Cgroups: map[string]bool{}}
	for _, s := range globalSysctls {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err == nil {
			h.Sysctls[s] = strings.TrimSpace(string(b))
		}
	}
	for _, p := range machinePaths {
		h.Paths[p] = exists(p)
	}
	for _, p := range kubepodsCgroups() {
		h.Cgroups[p] = exists(p)
	}
	h.NetnsDirExisted = exists(netnsDir)
	h.NetnsDirMounted = isMountpoint(netnsDir)
	chains, err := rootKubeChains()
	if err != nil {
		return nil, err
	}
	h.Chains = chains
	return h, nil
}

// saveHost records the host's state once: a second up after a failed one
// must not take the half-changed machine for the original.
func saveHost(path string) (*hostState, error) {
	if h, err := loadHost(path); err == nil {
		return h, nil
	}
	h, err := captureHost()
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return nil, err
	}
	return h, os.WriteFile(path, b, 0o644)
}

func loadHost(path string) (*hostState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var h hostState
	return &h, json.Unmarshal(b, &h)
}

// restoreSysctls writes back every saved value that changed.
func restoreSysctls(h *hostState) []error {
	var errs []error
	for s, want := range h.Sysctls {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err != nil || strings.TrimSpace(string(b)) == want {
			continue
		}
		if err := os.WriteFile("/proc/sys/"+s, []byte(want), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", s, want, err))
		}
	}
	return errs
}

// removeMachinePaths removes the machine-wide paths that did not exist
// before up.
func removeMachinePaths(h *hostState) []error {
	var errs []error
	for p, existed := range h.Paths {
		if !existed {
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// removeCgroups removes the kubepods cgroup trees that did not exist
// before up, deepest first, waiting for exiting processes to leave them.
func removeCgroups(h *hostState) []error {
	var errs []error
	for _, root := range kubepodsCgroups() {
		if h != nil && h.Cgroups[root] {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
	}
	return errs
}

// cgroupProcs lists the processes left in the kubepods cgroups: the
// containers' processes, which must be gone before the cgroups can go.
func cgroupProcs() []int {
	seen := map[int]bool{}
	for _, root := range kubepodsCgroups() {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	var pids []int
	for pid := range seen {
		pids = append(pids, pid)
	}
	return pids
}

// mountsUnder lists the mount points at or under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	// Later mounts may sit on earlier ones: unmount in reverse order, which
	// is also deepest first for nested ones.
	for i, j := 0, len(mounts)-1; i < j; i, j = i+1, j-1 {
		mounts[i], mounts[j] = mounts[j], mounts[i]
	}
	return mounts
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

func isMountpoint(p string) bool {
	for _, m := range mountsUnder(p) {
		if m == p {
			return true
		}
	}
	return false
}

// unmount unmounts p, and detaches it lazily if it is still busy.
func unmount(p string) error {
	if err := syscall.Unmount(p, 0); err == nil || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("unmount %s: %w", p, err)
	}
	return nil
}

// rootKubeChains lists the KUBE-* chains of the root network namespace as
// "table chain" pairs.
func rootKubeChains() ([]string, error) {
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil, nil
	}
	var chains []string
	for _, table := range []string{"filter", "nat", "mangle"} {
		out, err := exec.Command("iptables", "-w", "-t", table, "-S").Output()
		if err != nil {
			return nil, fmt.Errorf("iptables -t %s -S: %w", table, err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], "KUBE-") {
				chains = append(chains, table+" "+f[1])
			}
		}
	}
	return chains, nil
}

// removeRootKubeChains deletes the KUBE-* chains of the root namespace that
// were not there before up, and the rules that jump to them.
func removeRootKubeChains(h *hostState) []error {
	now, err := rootKubeChains()
	if err != nil {
		return []error{err}
	}
	before := map[string]bool{}
	for _, c := range h.Chains {
		before[c] = true
	}
	var errs []error
	for _, c := range now {
		if before[c] {
			continue
		}
		table, chain, _ := strings.Cut(c, " ")
		out, _ := exec.Command("iptables", "-w", "-t", table, "-S").Output()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, "-j "+chain) {
				args := append([]string{"-w", "-t", table, "-D"}, strings.Fields(l)[1:]...)
				if err := run(append([]string{"iptables"}, args...)...); err != nil {
					errs = append(errs, err)
				}
			}
		}
		_ = run("iptables", "-w", "-t", table, "-F", chain)
	}
	for _, c := range now {
		if !before[c] {
			table, chain, _ := strings.Cut(c, " ")
			if err := run("iptables", "-w", "-t", table, "-X", chain); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}
