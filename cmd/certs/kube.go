package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// ensureSecret keeps a good Secret, or writes a new bundle into it, and
// returns the bundle in force and whether it is new.
func ensureSecret(ctx context.Context, cs kubernetes.Interface, o options, names []string) (Bundle, bool, error) {
	secrets := cs.CoreV1().Secrets(o.namespace)
	cur, err := secrets.Get(ctx, o.secret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cur = nil
	case err != nil:
		return Bundle{}, false, fmt.Errorf("secret %s/%s: %w", o.namespace, o.secret, err)
	}
	now := time.Now()
	if cur != nil && !o.force {
		have := Bundle{
			CertPEM: cur.Data[corev1.TLSCertKey],
			KeyPEM:  cur.Data[corev1.TLSPrivateKeyKey],
			CAPEM:   cur.Data[caKey],
		}
		if have.Check(names, now, o.renewBefore) == nil {
			return have, false, nil
		}
	}
	b, err := NewBundle(names, o.validity, now)
	if err != nil {
		return Bundle{}, false, err
	}
	data := map[string][]byte{corev1.TLSCertKey: b.CertPEM, corev1.TLSPrivateKeyKey: b.KeyPEM, caKey: b.CAPEM}
	if cur == nil {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: o.secret, Namespace: o.namespace, Labels: map[string]string{
				"app.kubernetes.io/name":       "aether-devhot",
				"app.kubernetes.io/managed-by": "aether-devhot-certs",
			}},
			Type: corev1.SecretTypeTLS,
			Data: data,
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return Bundle{}, false, fmt.Errorf("creating secret %s/%s: %w", o.namespace, o.secret, err)
		}
		return b, true, nil
	}
	if cur.Type != corev1.SecretTypeTLS {
		return Bundle{}, false, fmt.Errorf("secret %s/%s has type %s, want %s: delete it or pick another --secret", o.namespace, o.secret, cur.Type, corev1.SecretTypeTLS)
	}
	cur.Data = data
	if _, err := secrets.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return Bundle{}, false, fmt.Errorf("updating secret %s/%s: %w", o.namespace, o.secret, err)
	}
	return b, true, nil
}

// caKey is the Secret key of the CA, as cert-manager names it.
const caKey = "ca.crt"

// patchCABundle sets caBundle on each webhook of the configuration that
// calls the Service, and returns their names. A JSON patch with a test of
// each webhook's name makes a concurrent reorder fail instead of patching
// the wrong webhook.
func patchCABundle(ctx context.Context, cs kubernetes.Interface, o options, b Bundle) ([]string, error) {
	mwcs := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := mwcs.Get(ctx, o.webhook, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("mutatingwebhookconfiguration %s: %w (apply the manifest first)", o.webhook, err)
	}
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	var ops []op
	var patched []string
	for i, w := range mwc.Webhooks {
		svc := w.ClientConfig.Service
		if svc == nil || svc.Name != o.service || svc.Namespace != o.namespace {
			continue
		}
		base := fmt.Sprintf("/webhooks/%d", i)
		ops = append(ops,
			op{Op: "test", Path: base + "/name", Value: w.Name},
			op{Op: "add", Path: base + "/clientConfig/caBundle", Value: b.CAPEM}, // []byte marshals to base64
		)
		patched = append(patched, w.Name)
	}
	if len(ops) == 0 {
		return nil, fmt.Errorf("mutatingwebhookconfiguration %s has no webhook that calls service %s/%s", o.webhook, o.namespace, o.service)
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	if _, err := mwcs.Patch(ctx, o.webhook, types.JSONPatchType, body, metav1.PatchOptions{FieldManager: "aether-devhot-certs"}); err != nil {
		return nil, fmt.Errorf("patching caBundle of %s: %w", o.webhook, err)
	}
	return patched, nil
}
