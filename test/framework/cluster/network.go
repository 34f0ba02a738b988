package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// The network of REAL-CLUSTER.md: every daemon runs in the namespace NetNS,
// joined to the root namespace by one veth pair, with no default route, so
// that nothing the cluster does leaves the machine.
const (
	// NetNS is the network namespace the whole cluster runs in.
	NetNS = "aether-node"
	// NodeName is the node's name, also the kubelet's hostname.
	NodeName = "aether-node"
	// HostAddr is the root namespace's end of the veth pair.
	HostAddr = "10.201.0.1"
	// NodeAddr is the namespace's end: the API server advertises it, the
	// kubelet reports it as the node's InternalIP, and tests in the root
	// namespace reach the API server at https://NodeAddr:APIPort.
	NodeAddr = "10.201.0.2"
	// PodCIDR is the bridge CNI's range.
	PodCIDR = "10.88.0.0/16"
	// ServiceCIDR is the ClusterIP range.
	ServiceCIDR = "10.96.0.0/16"
	// APIServiceIP is the kubernetes Service's ClusterIP.
	APIServiceIP = "10.96.0.1"
	// StoreServiceIP is the ClusterIP Install gives the chart's store, in
	// the range's static band: with no cluster DNS, pods reach the store by
	// IP, and the webhook must name that URL (store.url) for the fetchers
	// to show it their store token.
	StoreServiceIP = "10.96.0.80"
	// APIPort is the API server's secure port.
	APIPort = 6443
	// RegistryAddr is the cluster's container registry (plain HTTP, no
	// auth) on the node's address: containerd pulls from it, and pods and
	// processes in the root namespace reach it too. Images in it are named
	// RegistryAddr/<repository>:<tag>.
	RegistryAddr = NodeAddr + ":5000"

	hostVeth = "aether-veth0"
	nodeVeth = "aether-veth1"
	netnsDir = "/run/netns"
)

// netnsPath is the namespace's bind mount, which nsenter --net takes.
var netnsPath = netnsDir + "/" + NetNS

// setupNetwork makes the namespace, the veth pair and the routes.
func setupNetwork() error {
	steps := [][]string{
		{"ip", "netns", "add", NetNS},
		{"ip", "link", "add", hostVeth, "type", "veth", "peer", "name", nodeVeth},
		{"ip", "link", "set", nodeVeth, "netns", NetNS},
		{"ip", "addr", "add", HostAddr + "/30", "dev", hostVeth},
		{"ip", "link", "set", hostVeth, "up"},
		{"ip", "-n", NetNS, "link", "set", "lo", "up"},
		{"ip", "-n", NetNS, "addr", "add", NodeAddr + "/30", "dev", nodeVeth},
		{"ip", "-n", NetNS, "link", "set", nodeVeth, "up"},
		// With no default route, a connect to a ClusterIP from the namespace
		// fails before kube-proxy's DNAT applies: without this route the API
		// server could not call the webhook's Service.
		{"ip", "-n", NetNS, "route", "add", ServiceCIDR, "dev", "lo", "src", NodeAddr},
		{"ip", "route", "add", PodCIDR, "via", NodeAddr},
		{"ip", "route", "add", ServiceCIDR, "via", NodeAddr},
		{"nsenter", "--net=" + netnsPath, "--", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return err
		}
	}
	return nil
}

// teardownNetwork removes the veth pair (its routes go with it) and the
// namespace, and the /run/netns mount that `ip netns add` made if there
// was none before.
func teardownNetwork(h *hostState) []error {
	var errs []error
	if linkExists(hostVeth) {
		if err := run("ip", "link", "del", hostVeth); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(netnsPath); err == nil {
		if err := run("ip", "netns", "del", NetNS); err != nil {
			errs = append(errs, err)
		}
	}
	if h != nil && !h.NetnsDirMounted && isMountpoint(netnsDir) {
		if err := unmount(netnsDir); err != nil {
			errs = append(errs, err)
		}
	}
	if h != nil && !h.NetnsDirExisted {
		if err := os.Remove(netnsDir); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errs
}

func netnsExists() bool {
	_, err := os.Stat(netnsPath)
	return err == nil
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// run runs a command and returns its output in the error.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
