package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os/exec"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
)

// TestCertsRenewalKeepsTheCAAndRotatesWithOverlap runs the cmd/certs
// binary against the real API server as an install without cert-manager
// would: install, renew, then rotate the CA in its three steps. After each
// run, a TLS client that trusts the caBundle the API server now has must
// accept the serving certificate in the Secret, and the one the manager may
// still be serving from before the run; a renewal leaves the CA and the
// caBundle as they were.
func TestCertsRenewalKeepsTheCAAndRotatesWithOverlap(t *testing.T) {
	ns := namespace(t, nil)
	const service = "aether-devhot"
	webhook := "certs-" + ns
	tool, err := controlplane.GoBuild(t.TempDir(), "./cmd/certs")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	none := admissionregistrationv1.SideEffectClassNone
	ignore := admissionregistrationv1.Ignore
	mwcs := cp.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := mwcs.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: webhook},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "deployments.aether.dev",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: service}},
			SideEffects:             &none,
			FailurePolicy:           &ignore,
			AdmissionReviewVersions: []string{"v1"},
			// Nothing carries this label: the webhook is never called.
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"aether.dev/certs-test": ns}},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mwcs.Delete(context.Background(), webhook, metav1.DeleteOptions{}) })

	certs := func(args ...string) string {
		t.Helper()
		args = append([]string{"--kubeconfig", cp.Kubeconfig, "--namespace", ns, "--service", service, "--webhook", webhook}, args...)
		out, err := exec.Command(tool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("certs %s: %v\n%s", strings.Join(args[6:], " "), err, out)
		}
		return string(out)
	}
	caBundle := func() []byte {
		t.Helper()
		m, err := mwcs.Get(ctx, webhook, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m.Webhooks[0].ClientConfig.CABundle
	}
	secret := func(name string) map[string][]byte {
		t.Helper()
		s, err := cp.Clientset.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Data
	}
	serving := func() servingPair {
		d := secret(service + "-tls")
		return servingPair{d[corev1.TLSCertKey], d[corev1.TLSPrivateKeyKey]}
	}
	serverName := service + "." + ns + ".svc"
	accepts := func(what string, p servingPair, bundle []byte) {
		t.Helper()
		if err := handshake(p, bundle, serverName); err != nil {
			t.Errorf("%s: a client that trusts the caBundle refuses the serving certificate: %v", what, err)
		}
	}

	t.Log(strings.TrimSpace(certs()))
	ca := secret(service + "-ca")["tls.crt"]
	before, first := caBundle(), serving()
	if !bytes.Equal(before, ca) {
		t.Fatal("the caBundle after install is not the CA of the CA Secret")
	}
	accepts("install", first, before)

	for _, run := range []string{"renewal", "renewal again"} {
		t.Log(strings.TrimSpace(certs("--force")))
		renewed := serving()
		if bytes.Equal(renewed.cert, first.cert) {
			t.Fatalf("%s kept the serving certificate", run)
		}
		if got := secret(service + "-ca")["tls.crt"]; !bytes.Equal(got, ca) {
			t.Fatalf("%s changed the CA", run)
		}
		if got := caBundle(); !bytes.Equal(got, before) {
			t.Fatalf("%s changed the caBundle", run)
		}
		// The API server's client trusted `before`; it must accept the new
		// certificate as soon as the manager serves it.
		accepts(run, renewed, before)
		first = renewed
	}

	t.Log(strings.TrimSpace(certs("--rotate-ca=begin")))
	if n := bytes.Count(caBundle(), []byte("BEGIN CERTIFICATE")); n != 2 {
		t.Fatalf("caBundle after begin holds %d CAs, want 2", n)
	}
	accepts("begin", serving(), caBundle())

	old := serving()
	t.Log(strings.TrimSpace(certs("--rotate-ca=switch")))
	switched := serving()
	if bytes.Equal(switched.cert, old.cert) {
		t.Fatal("switch kept the serving certificate")
	}
	accepts("switch, the new certificate", switched, caBundle())
	accepts("switch, the certificate the manager may still serve", old, caBundle())
	if err := handshake(switched, ca, serverName); err == nil {
		t.Error("the certificate after switch is still signed by the old CA")
	}

	t.Log(strings.TrimSpace(certs("--rotate-ca=finish", "--reload-wait=0s")))
	after := caBundle()
	accepts("finish", serving(), after)
	if bytes.Contains(after, ca) {
		t.Error("finish left the old CA in the caBundle")
	}
}

// servingPair is a serving certificate and its key, PEM.
type servingPair struct{ cert, key []byte }

// handshake serves p on loopback and connects to it as the API server does
// to a webhook: trusting caBundle alone, for serverName.
func handshake(p servingPair, caBundle []byte, serverName string) error {
	pair, err := tls.X509KeyPair(p.cert, p.key)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		return errors.New("the caBundle holds no certificate")
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.(*tls.Conn).Handshake()
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverName})
	if err != nil {
		return err
	}
	return conn.Close()
}
