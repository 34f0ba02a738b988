// Package cluster runs a real single-node Kubernetes cluster on this machine
// for the e2e tests on real pods (make cluster-up, make test-cluster,
// make cluster-down), as measured in ../shared/REAL-CLUSTER.md: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and
// kube-proxy v1.37.2 from bin/ (hack/build-tools.sh cluster), containerd,
// runc and the CNI plugins from Debian, locally built images, a container
// registry (distribution v3, bin/registry) on RegistryAddr that containerd
// pulls from over plain HTTP, and all of it inside the network namespace
// NetNS, so that no traffic leaves the machine. The Node.js bases are
// pushed to the registry at up (BaseImages); test/framework/apps layers
// the apps of test/testdata/apps on them.
//
// Everything the cluster writes lives in one directory (Dir), except what
// the kubelet and containerd put machine-wide; Down undoes that too, from
// the host state Up saved first. One cluster per machine: cgroups,
// /run/containerd and /var/log/pods are machine-wide.
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultDir is the cluster's directory unless AETHER_CLUSTER_DIR says
// otherwise. It is fixed so that down, images and a second up find the
// running cluster.
const DefaultDir = "/tmp/aether-cluster"

// DirEnv moves the cluster's directory from DefaultDir.
const DirEnv = "AETHER_CLUSTER_DIR"

// KubeconfigEnv names the admin kubeconfig of a running cluster, with the
// product installed, to the tests and the bench that use it (make
// test-cluster sets it).
const KubeconfigEnv = "AETHER_CLUSTER_KUBECONFIG"

// DirFromEnv is the cluster's directory: $AETHER_CLUSTER_DIR, or DefaultDir.
func DirFromEnv() string {
	if dir := os.Getenv(DirEnv); dir != "" {
		return dir
	}
	return DefaultDir
}

// Cluster is the single-node cluster of one directory.
type Cluster struct {
	// Dir holds the cluster's state, configs, certificates and logs.
	Dir string
	// Repo is the module root: binaries come from Repo/bin, images are
	// built from Repo/cmd.
	Repo string
	// Out receives one line per phase, with its duration.
	Out io.Writer

	// bases are the images BuildImages built for PushBases.
	bases map[string]v1.Image
}

// Kubeconfig is the admin kubeconfig for the root namespace, which reaches
// the API server at NodeAddr.
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.Dir, "kubeconfig") }

func (c *Cluster) containerdSock() string {
	return filepath.Join(c.Dir, "containerd", "containerd.sock")
}

func (c *Cluster) hostFile() string { return filepath.Join(c.Dir, "host.json") }

func (c *Cluster) bin(name string) string { return filepath.Join(c.Repo, "bin", name) }

// phase runs one step of up or down and prints how long it took.
func (c *Cluster) phase(name string, f func() error) error {
	start := time.Now()
	err := f()
	status := "ok"
	if err != nil {
		status = "FAILED"
	}
	fmt.Fprintf(c.Out, "%-42s %6.1fs  %s\n", name, time.Since(start).Seconds(), status)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// components are the daemons in start order; down stops them in the
// order of REAL-CLUSTER.md: node agents first, then the registry, containerd
// last.
var components = []string{"containerd", "registry", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "coredns"}

// Running reports whether a cluster of this directory is up: every daemon
// alive and the API server ready.
func (c *Cluster) Running() bool {
	for _, name := range components {
		if _, ok := c.daemon(name); !ok {
			return false
		}
	}
	return c.apiReady() == nil
}

// lock takes the directory's lock, so that two up or down commands never
// interleave; unlock releases it.
func (c *Cluster) lock() (unlock func(), err error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(c.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another cluster command holds %s", f.Name())
	}
	return func() { f.Close() }, nil
}

// Supported reports why this machine cannot run the cluster, or nil: it
// needs Linux, root, network namespaces (tried with unshare), and
// containerd, runc and the CNI plugins, or apt-get to install them. It
// changes nothing on the host.
func Supported() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("needs Linux, this is %s", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, mounts, cgroups)")
	}
	for _, p := range []string{"ip", "nsenter", "unshare"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("needs %s (iproute2, util-linux)", p)
		}
	}
	if out, err := exec.Command("unshare", "--net", "true").CombinedOutput(); err != nil {
		return fmt.Errorf("cannot make a network namespace (unshare --net: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	if _, err := exec.LookPath("apt-get"); err != nil && missingPackages() {
		return errors.New("containerd, runc or the CNI plugins are missing, and there is no apt-get to install them")
	}
	return nil
}

// Up brings the cluster up, or reuses it when it is already running. A
// half-up cluster (a namespace without all its daemons) is an error that
// names make cluster-down.
func (c *Cluster) Up() error {
	if err := Supported(); err != nil {
		return fmt.Errorf("this machine cannot run the cluster: %w", err)
	}
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if c.Running() {
		fmt.Fprintf(c.Out, "cluster already up: reusing it (KUBECONFIG=%s)\n", c.Kubeconfig())
		return nil
	}
	if netnsExists() || linkExists(hostVeth) {
		return fmt.Errorf("network namespace %s or link %s exists but the cluster of %s is not running: run make cluster-down first", NetNS, hostVeth, c.Dir)
	}
	for _, p := range []string{"containerd", "registry", "etcd", "kube-apiserver", "kubelet"} {
		if d, ok := c.daemon(p); ok {
			return fmt.Errorf("%s (pid %d) of a previous cluster still runs: run make cluster-down first", p, d.PID)
		}
	}
	total := time.Now()
	steps := []struct {
		name string
		f    func() error
	}{
		{"packages (containerd, runc, CNI)", ensurePackages},
		{"binaries in bin/", c.checkBinaries},
		{"save host state", func() error { _, err := saveHost(c.hostFile()); return err }},
		{"network namespace " + NetNS, setupNetwork},
		{"certificates and configs", c.prepare},
		{"containerd", c.startContainerd},
		{"registry " + RegistryAddr, c.startRegistry},
		{"images (build and import)", func() error {
			tars, err := c.BuildImages()
			if err != nil {
				return err
			}
			return c.ImportImages(tars)
		}},
		{"push node:20, distroless to the registry", c.PushBases},
		{"etcd and kube-apiserver ready", c.startControlPlane},
		{"controller-manager, scheduler", c.startControllers},
		{"kubelet, kube-proxy: node Ready", c.startNode},
		{"cluster DNS (CoreDNS) at " + DNSServiceIP, c.startDNS},
		{"pods admissible (SA, root CA)", c.waitAdmissible},
	}
	for _, s := range steps {
		if err := c.phase(s.name, s.f); err != nil {
			return fmt.Errorf("%w\nlogs: %s/logs; undo with make cluster-down", err, c.Dir)
		}
	}
	fmt.Fprintf(c.Out, "cluster up in %.1fs: KUBECONFIG=%s\n", time.Since(total).Seconds(), c.Kubeconfig())
	return nil
}

// ensurePackages installs containerd, runc, the CNI plugins and iptables
// with apt when one is missing, without starting any service. When the
// install fails, it updates apt's package lists once and tries again: a
// fresh machine may have none.
func ensurePackages() error {
	if !missingPackages() {
		return nil
	}
	install := func() error {
		return apt("install", "-y", "-q", "--no-install-recommends", "containerd", "runc", "containernetworking-plugins", "iptables")
	}
	if err := install(); err != nil {
		if uerr := apt("update", "-q"); uerr != nil {
			return fmt.Errorf("%w\n%w", err, uerr)
		}
		return install()
	}
	return nil
}

// missingPackages reports whether a command or the CNI bridge plugin of
// ensurePackages is missing.
func missingPackages() bool {
	for _, p := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables", "nsenter", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			return true
		}
	}
	_, err := os.Stat("/usr/lib/cni/bridge")
	return err != nil
}

func apt(args ...string) error {
	cmd := exec.Command("apt-get", args...)
	// RUNLEVEL=1 asks invoke-rc.d not to start the packaged containerd: the
	// cluster runs its own, with its own config.
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "RUNLEVEL=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (c *Cluster) checkBinaries() error {
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl", "helm", "registry", "coredns"} {
		if _, err := os.Stat(c.bin(b)); err != nil {
			return fmt.Errorf("bin/%s is missing: run make tools && hack/build-tools.sh cluster", b)
		}
	}
	return nil
}

// prepare makes the directory tree, the PKI and every config.
func (c *Cluster) prepare() error {
	for _, d := range []string{"logs", "run", "etc", "pki", "etcd", "kubelet", "pod-logs", "cni/net.d", "cni/ipam", "containerd", "runc", "images", "registry", "containerd/certs.d/" + RegistryAddr} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := writePKI(c.Dir); err != nil {
		return err
	}
	return c.writeConfigs()
}

func (c *Cluster) startContainerd() error {
	if err := c.startDaemon("containerd", "containerd", "--config", filepath.Join(c.Dir, "etc", "containerd.toml")); err != nil {
		return err
	}
	return c.waitFor("containerd", 30*time.Second, func() error {
		return run("ctr", "-a", c.containerdSock(), "version")
	})
}

// startRegistry starts the registry on RegistryAddr inside the namespace
// and waits for its /v2/ from the root namespace. OTEL_TRACES_EXPORTER=none:
// the registry would otherwise export traces to an OTLP collector on
// loopback that is not there.
func (c *Cluster) startRegistry() error {
	if err := c.startDaemonEnv("registry", []string{"OTEL_TRACES_EXPORTER=none"},
		c.bin("registry"), "serve", filepath.Join(c.Dir, "etc", "registry.yml")); err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{}}
	return c.waitFor("registry", 30*time.Second, func() error {
		resp, err := client.Get("http://" + RegistryAddr + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		return nil
	})
}

func (c *Cluster) startControlPlane() error {
	pki := func(f string) string { return filepath.Join(c.Dir, "pki", f) }
	if err := c.startDaemon("etcd", c.bin("etcd"),
		"--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "default=http://127.0.0.1:2380", "--unsafe-no-fsync"); err != nil {
		return err
	}
	if err := c.startDaemon("kube-apiserver", c.bin("kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address=0.0.0.0",
		fmt.Sprintf("--secure-port=%d", APIPort),
		// Loopback would be refused by the endpoint reconciler.
		"--advertise-address="+NodeAddr,
		"--service-cluster-ip-range="+ServiceCIDR,
		"--tls-cert-file="+pki("apiserver.crt"), "--tls-private-key-file="+pki("apiserver.key"),
		"--client-ca-file="+pki("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+pki("sa.pub"), "--service-account-signing-key-file="+pki("sa.key"),
		"--kubelet-client-certificate="+pki("apiserver-kubelet-client.crt"), "--kubelet-client-key="+pki("apiserver-kubelet-client.key"),
		// Without it kubectl logs and exec look the node up in DNS.
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
	); err != nil {
		return err
	}
	return c.waitFor("kube-apiserver", 60*time.Second, c.apiReady)
}

func (c *Cluster) startControllers() error {
	pki := func(f string) string { return filepath.Join(c.Dir, "pki", f) }
	if err := c.startDaemon("kube-controller-manager", c.bin("kube-controller-manager"),
		"--kubeconfig="+filepath.Join(c.Dir, "etc", "controller-manager.kubeconfig"),
		"--bind-address=127.0.0.1", "--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+pki("sa.key"),
		"--root-ca-file="+pki("ca.crt"),
		"--cluster-signing-cert-file="+pki("ca.crt"), "--cluster-signing-key-file="+pki("ca.key"),
		"--service-cluster-ip-range="+ServiceCIDR,
	); err != nil {
		return err
	}
	return c.startDaemon("kube-scheduler", c.bin("kube-scheduler"),
		"--kubeconfig="+filepath.Join(c.Dir, "etc", "scheduler.kubeconfig"),
		"--bind-address=127.0.0.1", "--leader-elect=false")
}

func (c *Cluster) startNode() error {
	if err := c.startDaemon("kubelet", c.bin("kubelet"),
		"--config="+filepath.Join(c.Dir, "etc", "kubelet.yaml"),
		"--kubeconfig="+filepath.Join(c.Dir, "etc", "kubelet.kubeconfig"),
		"--root-dir="+filepath.Join(c.Dir, "kubelet"),
		"--cert-dir="+filepath.Join(c.Dir, "kubelet", "pki"),
		"--hostname-override="+NodeName,
		"--node-ip="+NodeAddr,
	); err != nil {
		return err
	}
	if err := c.startDaemon("kube-proxy", c.bin("kube-proxy"),
		"--config="+filepath.Join(c.Dir, "etc", "kube-proxy.yaml")); err != nil {
		return err
	}
	return c.waitFor("node Ready", 90*time.Second, func() error {
		out, err := c.Kubectl("get", "node", NodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err == nil && out != "True" {
			err = fmt.Errorf("node %s Ready=%q", NodeName, out)
		}
		return err
	})
}

// startDNS makes CoreDNS the cluster's DNS: its RBAC and the kube-dns
// Service that leads to it, then CoreDNS itself on the node, and waits
// until it answers for the kubernetes Service, through the Service's IP.
func (c *Cluster) startDNS() error {
	if err := c.apply(dnsObjects); err != nil {
		return err
	}
	if err := c.startDaemon("coredns", c.bin("coredns"), "-conf", filepath.Join(c.Dir, "etc", "Corefile")); err != nil {
		return err
	}
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, net.JoinHostPort(DNSServiceIP, "53"))
	}}
	return c.waitFor("kubernetes.default.svc."+ClusterDomain+" resolving", 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ips, err := r.LookupHost(ctx, "kubernetes.default.svc."+ClusterDomain)
		if err == nil && (len(ips) != 1 || ips[0] != APIServiceIP) {
			err = fmt.Errorf("answered %v, want %s", ips, APIServiceIP)
		}
		return err
	})
}

// apply applies manifest with the admin kubeconfig.
func (c *Cluster) apply(manifest string) error {
	cmd := exec.Command(c.bin("kubectl"), "--kubeconfig", c.Kubeconfig(), "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply: %v\n%s", err, out)
	}
	return nil
}

// waitAdmissible waits for what every pod of the default namespace needs:
// its default ServiceAccount and the kube-root-ca.crt ConfigMap.
func (c *Cluster) waitAdmissible() error {
	return c.waitFor("default ServiceAccount and kube-root-ca.crt", 60*time.Second, func() error {
		if _, err := c.Kubectl("-n", "default", "get", "serviceaccount", "default"); err != nil {
			return err
		}
		_, err := c.Kubectl("-n", "default", "get", "configmap", "kube-root-ca.crt")
		return err
	})
}

// Kubectl runs the pinned kubectl with the admin kubeconfig.
func (c *Cluster) Kubectl(args ...string) (string, error) {
	cmd := exec.Command(c.bin("kubectl"), append([]string{"--kubeconfig", c.Kubeconfig()}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// apiReady asks the API server's /readyz from the root namespace, as the
// admin.
func (c *Cluster) apiReady() error {
	pki := func(f string) string { return filepath.Join(c.Dir, "pki", f) }
	cert, err := tls.LoadX509KeyPair(pki("admin.crt"), pki("admin.key"))
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(pki("ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}
	resp, err := client.Get(fmt.Sprintf("https://%s:%d/readyz", NodeAddr, APIPort))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("/readyz: %s: %s", resp.Status, b)
	}
	return nil
}

// waitFor polls ok every 200 ms until it succeeds or timeout passes.
func (c *Cluster) waitFor(what string, timeout time.Duration, ok func() error) error {
	var err error
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if err = ok(); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s not ready after %s: %w", what, timeout, err)
}
