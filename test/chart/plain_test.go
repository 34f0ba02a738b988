package chart

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
)

// plainManifest is the committed render for `kubectl apply` installs.
var plainManifest = filepath.Join(controlplane.RepoRoot(), "deploy", "aether-devhot.yaml")

// TestPlainManifestIsRendered fails when deploy/aether-devhot.yaml is not
// what deploy/render.sh makes of the chart now.
func TestPlainManifestIsRendered(t *testing.T) {
	out := filepath.Join(t.TempDir(), "aether-devhot.yaml")
	cmd := exec.Command(filepath.Join(controlplane.RepoRoot(), "deploy", "render.sh"), out)
	cmd.Env = append(os.Environ(), "HELM="+helmBin, "IMG=", "NAMESPACE=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deploy/render.sh: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(plainManifest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "<end of file>"
		}
		t.Errorf("deploy/aether-devhot.yaml is stale: run `make manifests`. Line %d is %q, the chart renders %q", i+1, line(gl), line(wl))
	}
}

// TestPlainInstallWithCerts is `make deploy` on the real API server: apply
// deploy/aether-devhot.yaml (no cert-manager), run the cmd/certs tool, and
// find a serving certificate for the Service in the Secret the manager
// mounts and its CA in the webhook's caBundle. A second run keeps both, and
// applying the manifest again (an upgrade) leaves the caBundle alone.
func TestPlainInstallWithCerts(t *testing.T) {
	manifest, err := os.ReadFile(plainManifest)
	if err != nil {
		t.Fatal(err)
	}
	applyServerSide(t, string(manifest))
	t.Cleanup(func() {
		if _, _, err := cp.Run(string(manifest), "delete", "--ignore-not-found", "--wait=false", "-f", "-"); err != nil {
			t.Error(err)
		}
	})
	const ns, name = "aether-system", "aether-devhot"

	tool := filepath.Join(t.TempDir(), "certs")
	build := exec.Command("go", "build", "-o", tool, "./cmd/certs")
	build.Dir = controlplane.RepoRoot()
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/certs: %v\n%s", err, b)
	}
	certs := func() string {
		t.Helper()
		b, err := exec.Command(tool, "--kubeconfig", cp.Kubeconfig).CombinedOutput()
		if err != nil {
			t.Fatalf("certs: %v\n%s", err, b)
		}
		return string(b)
	}
	caBundle := func() []byte {
		t.Helper()
		m, err := cp.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m.Webhooks[0].ClientConfig.CABundle
	}
	secret := func() *corev1.Secret {
		t.Helper()
		s, err := cp.Clientset.CoreV1().Secrets(ns).Get(context.Background(), name+"-tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if len(caBundle()) != 0 {
		t.Fatal("the plain manifest has a caBundle before certs ran")
	}

	t.Log(strings.TrimSpace(certs()))
	s := secret()
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("secret type %s, want %s", s.Type, corev1.SecretTypeTLS)
	}
	ca := caBundle()
	if !bytes.Equal(ca, s.Data["ca.crt"]) {
		t.Errorf("caBundle is not the Secret's ca.crt:\n%s\n%s", ca, s.Data["ca.crt"])
	}
	// What the API server does when it calls the webhook.
	pair, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatalf("caBundle holds no certificate: %q", ca)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name + "." + ns + ".svc", Roots: roots}); err != nil {
		t.Errorf("the serving certificate does not verify against the caBundle: %v", err)
	}

	if out := certs(); !strings.Contains(out, "kept") {
		t.Errorf("second run made a new certificate:\n%s", out)
	}
	if again := secret(); !bytes.Equal(again.Data[corev1.TLSCertKey], s.Data[corev1.TLSCertKey]) {
		t.Error("second run replaced the certificate")
	}
	applyServerSide(t, string(manifest))
	if got := caBundle(); !bytes.Equal(got, ca) {
		t.Errorf("applying the manifest again changed the caBundle to %q", got)
	}
}
