package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// containerdConfig is containerd 1.6's config with everything in the
// cluster directory. restrict_oom_score_adj is required here: root lacks
// CAP_SYS_RESOURCE in this VM, and without it every sandbox fails with
// "can't get final child's PID from pipe: EOF".
const containerdConfig = `version = 2
root = "{{dir}}/containerd/root"
state = "{{dir}}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{{dir}}/containerd/containerd.sock"

[ttrpc]
  address = "{{dir}}/containerd/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{{dir}}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "` + PauseImage + `"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{{dir}}/runc"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{{dir}}/cni/net.d"

  # Registry hosts as containerd 1.6 reads them (hosts.toml per host, see
  # registryHosts); the older registry.mirrors table cannot be set with it.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{{dir}}/containerd/certs.d"
`

// registryHosts is containerd's hosts.toml for RegistryAddr: pull and
// resolve over plain HTTP from the cluster's registry.
const registryHosts = `server = "http://` + RegistryAddr + `"

[host."http://` + RegistryAddr + `"]
  capabilities = ["pull", "resolve"]
`

// registryConfig is the distribution registry's: the filesystem driver
// under the cluster directory, plain HTTP on RegistryAddr, no auth, an
// access log line per request (in logs/registry.log).
const registryConfig = `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {{dir}}/registry
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: ` + RegistryAddr + `
health:
  storagedriver:
    enabled: false
`

// cniConfig is required even for hostNetwork pods: without a conflist the
// node stays NotReady. containerd picks it up live.
const cniConfig = `{
  "cniVersion": "0.4.0",
  "name": "aether",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "{{dir}}/cni/ipam",
        "ranges": [[{"subnet": "` + PodCIDR + `"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

// kubeletConfig: failCgroupV1 false because the host is cgroup v1;
// cgroupfs because there is no systemd and containerd 1.6 cannot report its
// driver; the cluster's DNS as the pods' nameserver, and an empty host
// resolv.conf, so that a name outside the cluster resolves nowhere.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
enforceNodeAllocatable: []
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  imagefs.available: 2%
podLogsDir: {{dir}}/pod-logs
containerRuntimeEndpoint: unix://{{dir}}/containerd/containerd.sock
resolvConf: {{dir}}/etc/resolv.conf
clusterDNS: [` + DNSServiceIP + `]
clusterDomain: ` + ClusterDomain + `
address: ` + NodeAddr + `
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {{dir}}/pki/ca.crt
authorization:
  mode: Webhook
serializeImagePulls: false
`

// corefile is CoreDNS's configuration: the kubernetes plugin answers for
// the cluster domain and reverse lookups, as kubeadm's default does, on
// DNSAddr only; nothing is forwarded, since the namespace has no route out.
const corefile = `.:53 {
    errors
    health ` + NodeAddr + `:8091
    ready ` + NodeAddr + `:8181
    kubernetes ` + ClusterDomain + ` in-addr.arpa ip6.arpa {
        kubeconfig {{dir}}/etc/coredns.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
`

// DNSUser is the user CoreDNS's client certificate names; dnsObjects give
// it the rights of kubeadm's system:coredns.
const DNSUser = "system:coredns"

// dnsObjects are what makes CoreDNS on the node the cluster's DNS: its
// RBAC, and the kube-dns Service at DNSServiceIP with an EndpointSlice that
// leads to DNSAddr (no selector: CoreDNS is no pod).
const dnsObjects = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: ` + DNSUser + `
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels:
    k8s-app: kube-dns
spec:
  clusterIP: ` + DNSServiceIP + `
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
addressType: IPv4
endpoints:
- addresses: [` + NodeAddr + `]
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
`

// kubeProxyConfig: iptables mode (nftables needs the nft binary), no
// conntrack limit change (nf_conntrack_max is machine-wide), and
// masqueradeAll so that a pod reaching a Service backed by a pod on the same
// bridge gets its replies back through the NAT (no br_netfilter needed).
const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: ` + NodeName + `
clusterCIDR: ` + PodCIDR + `
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection:
  kubeconfig: {{dir}}/etc/kube-proxy.kubeconfig
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  masqueradeAll: true
`

// writeConfigs writes every config file and kubeconfig into the cluster
// directory.
func (c *Cluster) writeConfigs() error {
	expand := func(s string) []byte { return []byte(strings.ReplaceAll(s, "{{dir}}", c.Dir)) }
	files := map[string][]byte{
		"etc/containerd.toml":          expand(containerdConfig),
		"cni/net.d/10-aether.conflist": expand(cniConfig),
		"etc/kubelet.yaml":             expand(kubeletConfig),
		"etc/kube-proxy.yaml":          expand(kubeProxyConfig),
		"etc/resolv.conf":              nil,
		"etc/registry.yml":             expand(registryConfig),
		"etc/Corefile":                 expand(corefile),
		"containerd/certs.d/" + RegistryAddr + "/hosts.toml": []byte(registryHosts),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(c.Dir, name), b, 0o644); err != nil {
			return err
		}
	}
	inside := fmt.Sprintf("https://127.0.0.1:%d", APIPort)
	for file, kc := range map[string]string{
		"controller-manager": "etc/controller-manager.kubeconfig",
		"scheduler":          "etc/scheduler.kubeconfig",
		"kubelet":            "etc/kubelet.kubeconfig",
		"kube-proxy":         "etc/kube-proxy.kubeconfig",
		"coredns":            "etc/coredns.kubeconfig",
	} {
		if err := writeKubeconfig(c.Dir, filepath.Join(c.Dir, kc), inside, file); err != nil {
			return err
		}
	}
	return writeKubeconfig(c.Dir, c.Kubeconfig(), fmt.Sprintf("https://%s:%d", NodeAddr, APIPort), "admin")
}
