package cluster

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/pki"
)

// identity is one client or serving certificate the cluster's components
// present, signed by the cluster CA.
type identity struct {
	file   string // pki/<file>.crt and pki/<file>.key
	cn     string
	org    string
	server bool
}

// identities are every certificate the cluster needs: the API server's
// serving certificate and one client certificate per component, whose
// names the Node and RBAC authorizers grant their built-in roles to.
var identities = []identity{
	{file: "apiserver", cn: "kube-apiserver", server: true},
	{file: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", org: "system:masters"},
	{file: "admin", cn: "aether-admin", org: "system:masters"},
	{file: "controller-manager", cn: "system:kube-controller-manager"},
	{file: "scheduler", cn: "system:kube-scheduler"},
	{file: "kubelet", cn: "system:node:" + NodeName, org: "system:nodes"},
	{file: "kube-proxy", cn: "system:kube-proxy"},
	{file: "coredns", cn: DNSUser},
}

// writePKI makes the cluster CA, the service-account signing key and every
// identity under dir/pki. The serving certificate covers the names the API
// server is reached by: loopback inside the namespace, the node address
// from the root namespace, and the kubernetes Service from pods.
func writePKI(dir string) error {
	dir = filepath.Join(dir, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := pki.NewCA("aether-cluster-ca", validity, time.Now())
	if err != nil {
		return err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	if err := writeKeyPair(dir, "ca", ca.CertPEM, caKey); err != nil {
		return err
	}
	saKey, err := pki.NewKey()
	if err != nil {
		return err
	}
	sa, err := pki.KeyPEM(saKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), sa, 0o600); err != nil {
		return err
	}
	// The API server verifies tokens with the public key: it reads no
	// public key out of a PKCS #8 private key, only out of PKCS #1 or SEC 1.
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return err
	}
	for _, id := range identities {
		l := pki.Leaf{CommonName: id.cn, Server: id.server}
		if id.org != "" {
			l.Organization = []string{id.org}
		}
		if id.server {
			l.DNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
			for _, ip := range []string{"127.0.0.1", APIServiceIP, NodeAddr} {
				l.IPs = append(l.IPs, net.ParseIP(ip))
			}
		}
		crt, key, err := ca.Issue(l, validity, time.Now())
		if err != nil {
			return err
		}
		if err := writeKeyPair(dir, id.file, crt, key); err != nil {
			return err
		}
	}
	return nil
}

// validity is the lifetime of the cluster's certificates: a test cluster
// lives for minutes.
const validity = 30 * 24 * time.Hour

func writeKeyPair(dir, name string, crt, key []byte) error {
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), crt, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), key, 0o600)
}

// writeKubeconfig writes a kubeconfig for the identity file at path, with
// its certificates embedded so that it can be copied anywhere.
func writeKubeconfig(dir, path, server, file string) error {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, "pki", name))
		return base64.StdEncoding.EncodeToString(b), err
	}
	ca, err := read("ca.crt")
	if err != nil {
		return err
	}
	crt, err := read(file + ".crt")
	if err != nil {
		return err
	}
	key, err := read(file + ".key")
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: aether
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: aether
  context:
    cluster: aether
    user: %s
current-context: aether
`, server, ca, file, crt, key, file)
	return os.WriteFile(path, []byte(cfg), 0o600)
}
