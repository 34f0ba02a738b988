package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
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
}

// writePKI makes the cluster CA, the service-account signing key and every
// identity under dir/pki. The serving certificate covers the names the API
// server is reached by: loopback inside the namespace, the node address
// from the root namespace, and the kubernetes Service from pods.
func writePKI(dir string) error {
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "aether-cluster-ca"},
		NotBefore:             now,
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writeKeyPair(pki, "ca", caDER, caKey); err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(pki, "sa.key"), saKey); err != nil {
		return err
	}
	for i, id := range identities {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)),
			Subject:      pkix.Name{CommonName: id.cn},
			NotBefore:    now,
			NotAfter:     now.Add(30 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if id.org != "" {
			tmpl.Subject.Organization = []string{id.org}
		}
		if id.server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.DNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
			for _, ip := range []string{"127.0.0.1", APIServiceIP, NodeAddr} {
				tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("certificate %s: %w", id.file, err)
		}
		if err := writeKeyPair(pki, id.file, der, key); err != nil {
			return err
		}
	}
	return nil
}

func writeKeyPair(pki, name string, der []byte, key *ecdsa.PrivateKey) error {
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(pki, name+".crt"), crt, 0o644); err != nil {
		return err
	}
	return writeKey(filepath.Join(pki, name+".key"), key)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
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
