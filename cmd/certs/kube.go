package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
)

// renew brings the CA Secret, the caBundle and the serving Secret to
// where o asks, in the one order that never leaves the API server without
// trust in the certificate the manager serves: the CA Secret, then the
// caBundle (every CA that signed a certificate the manager may serve, or
// will), then the serving Secret. A renewal signs with the CA kept in the
// CA Secret, so the caBundle stays as it is; a new CA comes only with
// --rotate-ca, in three runs (see caState.rotate). It reports what it did
// on out.
func renew(ctx context.Context, cs kubernetes.Interface, o options, now time.Time, out io.Writer) error {
	secrets := cs.CoreV1().Secrets(o.namespace)
	serving, err := getSecret(ctx, secrets, o.namespace, o.secret)
	if err != nil {
		return err
	}
	caSecret, err := getSecret(ctx, secrets, o.namespace, o.caSecret)
	if err != nil {
		return err
	}
	var st caState
	switch {
	case caSecret != nil:
		if st, err = decodeCAState(caSecret.Data); err != nil {
			return fmt.Errorf("secret %s/%s: %w (restore it from a backup, or delete it and the serving Secret %s to start over with a new CA)", o.namespace, o.caSecret, err, o.secret)
		}
	case serving != nil && len(serving.Data[caKey]) > 0:
		if st, err = migratedCAState(serving.Data[caKey], now); err != nil {
			return fmt.Errorf("secret %s/%s: %w", o.namespace, o.secret, err)
		}
		fmt.Fprintf(out, "secret %s/%s: no CA kept (an older cmd/certs threw its key away): a new CA signs from now on, the old one stays trusted until --rotate-ca=finish\n", o.namespace, o.caSecret)
	default:
		if st, err = newCAState(now); err != nil {
			return err
		}
	}
	var servingCert []byte
	if serving != nil {
		servingCert = serving.Data[corev1.TLSCertKey]
	}
	reissue, err := st.rotate(o.rotateCA, servingCert, now, o.reloadWait)
	if err != nil {
		return err
	}

	caData, err := st.encode()
	if err != nil {
		return err
	}
	if err := writeSecret(ctx, secrets, caSecret, o.namespace, o.caSecret, caData); err != nil {
		return err
	}
	trusted := st.trusted()
	patched, err := patchCABundle(ctx, cs, o, trusted)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "mutatingwebhookconfiguration %s: caBundle on %v trusts %d CA(s)\n", o.webhook, patched, strings.Count(string(trusted), "BEGIN CERTIFICATE"))

	names := DNSNames(o.service, o.namespace)
	b := Bundle{CAPEM: trusted}
	if serving != nil {
		b.CertPEM, b.KeyPEM = serving.Data[corev1.TLSCertKey], serving.Data[corev1.TLSPrivateKeyKey]
	}
	why := b.Check(names, now, o.renewBefore)
	switch {
	case serving == nil:
		why = errors.New("none yet")
	case reissue:
		why = fmt.Errorf("--rotate-ca=%s", o.rotateCA)
	case o.force:
		why = errors.New("--force")
	}
	if why == nil {
		fmt.Fprintf(out, "secret %s/%s: certificate still valid, kept\n", o.namespace, o.secret)
	} else {
		if b, err = issueBundle(st.signing, trusted, names, o.validity, now); err != nil {
			return err
		}
		fmt.Fprintf(out, "secret %s/%s: new serving certificate for %v (%v)\n", o.namespace, o.secret, names, why)
	}
	data := map[string][]byte{corev1.TLSCertKey: b.CertPEM, corev1.TLSPrivateKeyKey: b.KeyPEM, caKey: b.CAPEM}
	return writeSecret(ctx, secrets, serving, o.namespace, o.secret, data)
}

// getSecret reads a Secret, nil when there is none.
func getSecret(ctx context.Context, secrets typedcorev1.SecretInterface, namespace, name string) (*corev1.Secret, error) {
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	if s.Type != corev1.SecretTypeTLS {
		return nil, fmt.Errorf("secret %s/%s has type %s, want %s: delete it or pick another name", namespace, name, s.Type, corev1.SecretTypeTLS)
	}
	return s, nil
}

// writeSecret creates the kubernetes.io/tls Secret name with data, or
// updates cur to it when its data differ.
func writeSecret(ctx context.Context, secrets typedcorev1.SecretInterface, cur *corev1.Secret, namespace, name string, data map[string][]byte) error {
	if cur == nil {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{
				"app.kubernetes.io/name":       "aether-devhot",
				"app.kubernetes.io/managed-by": "aether-devhot-certs",
			}},
			Type: corev1.SecretTypeTLS,
			Data: data,
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating secret %s/%s: %w", namespace, name, err)
		}
		return nil
	}
	if maps.EqualFunc(cur.Data, data, bytes.Equal) {
		return nil
	}
	cur = cur.DeepCopy()
	cur.Data = data
	if _, err := secrets.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating secret %s/%s: %w", namespace, name, err)
	}
	return nil
}

// caKey is the Secret key of the CA, as cert-manager names it.
const caKey = "ca.crt"

// patchCABundle sets caBundle on each webhook of the configuration that
// calls the Service, and returns their names. A JSON patch with a test of
// each webhook's name makes a concurrent reorder fail instead of patching
// the wrong webhook.
func patchCABundle(ctx context.Context, cs kubernetes.Interface, o options, caBundle []byte) ([]string, error) {
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
			op{Op: "add", Path: base + "/clientConfig/caBundle", Value: caBundle}, // []byte marshals to base64
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
