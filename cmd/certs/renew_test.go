package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// renewHarness runs renew against a fake clientset on a clock of its own,
// and checks after every write that it makes — not only after each run —
// that the caBundle trusts every serving certificate the manager may be
// serving: the one in the Secret, and those it replaced within reloadWait,
// which the kubelet and the manager may not have picked up yet.
type renewHarness struct {
	t   *testing.T
	cs  *fake.Clientset
	o   options
	now time.Time
	// served are the serving certificates the Secret has held, oldest
	// first, with when each was replaced (zero: still there).
	served []servedCert
}

type servedCert struct {
	pem      []byte
	replaced time.Time
}

// newRenewHarness starts with a MutatingWebhookConfiguration whose webhook
// calls the Service and trusts caBundle, and with objs.
func newRenewHarness(t *testing.T, caBundle []byte, objs ...runtime.Object) *renewHarness {
	h := &renewHarness{
		t:   t,
		now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		o: options{
			namespace: "aether-system", service: "aether-devhot", secret: "aether-devhot-tls",
			caSecret: "aether-devhot-ca", webhook: "aether-devhot",
			validity: 365 * 24 * time.Hour, renewBefore: 30 * 24 * time.Hour, reloadWait: 2 * time.Minute,
		},
	}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "aether-devhot"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "deployments.aether.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service:  &admissionregistrationv1.ServiceReference{Namespace: "aether-system", Name: "aether-devhot"},
				CABundle: caBundle,
			},
		}},
	}
	h.cs = fake.NewClientset(append(objs, mwc)...)
	// The reactor sees each request before the tracker applies it, so it
	// checks the state that the previous write left.
	h.cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
			h.checkTrust("before " + a.GetVerb() + " " + a.GetResource().Resource)
		}
		return false, nil, nil
	})
	return h
}

// run runs renew with the flags edited by edit, at the harness's clock.
func (h *renewHarness) run(edit func(*options)) error {
	h.t.Helper()
	o := h.o
	if edit != nil {
		edit(&o)
	}
	err := renew(context.Background(), h.cs, o, h.now, io.Discard)
	h.checkTrust("after the run")
	return err
}

func (h *renewHarness) secret(name string) *corev1.Secret {
	s, err := h.cs.Tracker().Get(corev1.SchemeGroupVersion.WithResource("secrets"), h.o.namespace, name)
	if err != nil {
		return nil
	}
	return s.(*corev1.Secret)
}

func (h *renewHarness) caBundle() []byte {
	obj, err := h.cs.Tracker().Get(admissionregistrationv1.SchemeGroupVersion.WithResource("mutatingwebhookconfigurations"), "", h.o.webhook)
	if err != nil {
		h.t.Fatal(err)
	}
	return obj.(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks[0].ClientConfig.CABundle
}

// checkTrust records the Secret's certificate when it changed, and fails
// the test if the caBundle does not verify a certificate the manager may
// serve now.
func (h *renewHarness) checkTrust(when string) {
	h.t.Helper()
	s := h.secret(h.o.secret)
	if s == nil {
		return
	}
	cur := s.Data[corev1.TLSCertKey]
	if n := len(h.served); n == 0 || !bytes.Equal(h.served[n-1].pem, cur) {
		if n > 0 {
			h.served[n-1].replaced = h.now
		}
		h.served = append(h.served, servedCert{pem: cur})
	}
	bundle := h.caBundle()
	for i, c := range h.served {
		if !c.replaced.IsZero() && h.now.Sub(c.replaced) >= h.o.reloadWait {
			continue
		}
		if !verifies(c.pem, bundle, h.o.service+"."+h.o.namespace+".svc", h.now) {
			h.t.Errorf("%s: the caBundle (%d CAs) does not verify serving certificate #%d of %d, which the manager may serve", when, certCount(bundle), i+1, len(h.served))
		}
	}
}

func verifies(certPEM, caPEM []byte, name string, now time.Time) bool {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return false
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return false
	}
	_, err = c.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: now})
	return err == nil
}

func certCount(b []byte) int { return strings.Count(string(b), "BEGIN CERTIFICATE") }

// signingCA is the CA certificate that signs, from the CA Secret.
func (h *renewHarness) signingCA() []byte { return h.secret(h.o.caSecret).Data["tls.crt"] }

// TestRenewKeepsTheCAAndRotatesWithOverlap walks an install through
// renewals and a CA rotation; each step says what it expects, and the
// harness checks trust after every single write.
func TestRenewKeepsTheCAAndRotatesWithOverlap(t *testing.T) {
	h := newRenewHarness(t, nil)
	step := func(name string, edit func(*options), wantErr string) {
		t.Helper()
		err := h.run(edit)
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("%s: %v", name, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Fatalf("%s: error %v, want one containing %q", name, err, wantErr)
		}
	}
	rotate := func(s string) func(*options) { return func(o *options) { o.rotateCA = s } }

	step("install", nil, "")
	ca := h.signingCA()
	bundle := h.caBundle()
	if !bytes.Equal(bundle, ca) {
		t.Fatalf("caBundle after install is not the CA")
	}
	if got := h.secret(h.o.secret).Data[caKey]; !bytes.Equal(got, ca) {
		t.Errorf("serving Secret's ca.crt is not the CA")
	}
	leaf := h.secret(h.o.secret).Data[corev1.TLSCertKey]

	h.now = h.now.Add(time.Hour)
	step("a run with nothing due", nil, "")
	if !bytes.Equal(h.secret(h.o.secret).Data[corev1.TLSCertKey], leaf) {
		t.Error("a run with nothing due replaced the serving certificate")
	}

	h.now = h.now.Add(340 * 24 * time.Hour)
	step("renewal when due", nil, "")
	if got := h.secret(h.o.secret).Data[corev1.TLSCertKey]; bytes.Equal(got, leaf) {
		t.Error("a due certificate was kept")
	}
	h.now = h.now.Add(time.Minute)
	step("renewal by --force", func(o *options) { o.force = true }, "")
	if !bytes.Equal(h.signingCA(), ca) || !bytes.Equal(h.caBundle(), bundle) {
		t.Fatal("renewal changed the CA or the caBundle")
	}

	step("finish before begin", rotate(stepFinish), "")
	step("switch before begin", rotate(stepSwitch), "run --rotate-ca=begin first")
	step("begin", rotate(stepBegin), "")
	if n := certCount(h.caBundle()); n != 2 {
		t.Fatalf("caBundle after begin holds %d CAs, want 2", n)
	}
	if !bytes.Equal(h.signingCA(), ca) {
		t.Error("begin changed the signing CA")
	}
	step("begin twice", rotate(stepBegin), "run --rotate-ca=switch next")
	step("finish before switch", rotate(stepFinish), "run --rotate-ca=switch first")
	h.now = h.now.Add(time.Minute)
	step("a renewal during the rotation", func(o *options) { o.force = true }, "")
	step("switch", rotate(stepSwitch), "")
	if bytes.Equal(h.signingCA(), ca) {
		t.Fatal("switch kept the old signing CA")
	}
	if n := certCount(h.caBundle()); n != 2 {
		t.Fatalf("caBundle after switch holds %d CAs, want 2", n)
	}
	step("finish too soon", rotate(stepFinish), "run again in 2m0s")
	h.now = h.now.Add(h.o.reloadWait)
	step("finish", rotate(stepFinish), "")
	newCA := h.signingCA()
	if got := h.caBundle(); !bytes.Equal(got, newCA) {
		t.Errorf("caBundle after finish holds %d CAs, want the new CA alone", certCount(got))
	}
	h.now = h.now.Add(time.Minute)
	step("renewal after the rotation", func(o *options) { o.force = true }, "")
	if !bytes.Equal(h.signingCA(), newCA) || !bytes.Equal(h.caBundle(), newCA) {
		t.Error("renewal after the rotation changed the CA")
	}
	step("bad step", rotate("now"), `want begin, switch or finish`)
}

// TestRenewMigratesAnInstallWithoutACA: an older cmd/certs left a serving
// Secret whose CA's key it threw away. The first run keeps that certificate
// and trusts a new CA next to the old one; switch and finish retire it.
func TestRenewMigratesAnInstallWithoutACA(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old := newTestBundle(t, DNSNames("aether-devhot", "aether-system"), 365*24*time.Hour, now)
	h := newRenewHarness(t, old.CAPEM, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "aether-system", Name: "aether-devhot-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: old.CertPEM, corev1.TLSPrivateKeyKey: old.KeyPEM, caKey: old.CAPEM},
	})
	h.now = now.Add(time.Hour)
	h.checkTrust("at the start")
	if err := h.run(nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.secret(h.o.secret).Data[corev1.TLSCertKey], old.CertPEM) {
		t.Error("the migration replaced a good serving certificate")
	}
	if n := certCount(h.caBundle()); n != 2 {
		t.Fatalf("caBundle after the migration holds %d CAs, want 2", n)
	}
	if err := h.run(func(o *options) { o.rotateCA = stepFinish }); err == nil || !strings.Contains(err.Error(), "still from the old CA") {
		t.Fatalf("finish before switch: %v", err)
	}
	if err := h.run(func(o *options) { o.rotateCA = stepSwitch }); err != nil {
		t.Fatal(err)
	}
	h.now = h.now.Add(h.o.reloadWait)
	if err := h.run(func(o *options) { o.rotateCA = stepFinish }); err != nil {
		t.Fatal(err)
	}
	if got := h.caBundle(); !bytes.Equal(got, h.signingCA()) || bytes.Contains(got, old.CAPEM) {
		t.Errorf("caBundle after finish holds %d CAs, want the new one alone", certCount(got))
	}
}
