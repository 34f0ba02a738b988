// Command certs gives the webhook TLS on clusters without cert-manager: it
// makes a CA and a serving certificate for the webhook Service's DNS names,
// stores them in a kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt) that
// the manager mounts, and patches the CA into the caBundle of every webhook
// of the MutatingWebhookConfiguration that calls that Service.
//
// It is idempotent: a Secret whose certificate is still valid for the names
// and not due for renewal is kept, and only the caBundle is (re)applied. Run
// it after `kubectl apply -f deploy/aether-devhot.yaml` (make deploy does),
// and again before the certificate expires (--renew-before).
//
//	go run ./cmd/certs --namespace aether-system
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// options are the command's flags.
type options struct {
	kubeconfig  string
	namespace   string
	service     string
	secret      string
	webhook     string
	validity    time.Duration
	renewBefore time.Duration
	force       bool
}

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "Kubeconfig file; empty: $KUBECONFIG, ~/.kube/config, or in-cluster.")
	flag.StringVar(&o.namespace, "namespace", "aether-system", "Namespace of the webhook Service and the Secret.")
	flag.StringVar(&o.service, "service", "aether-devhot", "The webhook Service; the certificate is made for its DNS names.")
	flag.StringVar(&o.secret, "secret", "aether-devhot-tls", "The kubernetes.io/tls Secret the manager mounts (the chart's certs.existingSecret, default <fullname>-tls).")
	flag.StringVar(&o.webhook, "webhook", "aether-devhot", "The MutatingWebhookConfiguration whose caBundle is patched.")
	flag.DurationVar(&o.validity, "validity", 365*24*time.Hour, "Lifetime of the serving certificate.")
	flag.DurationVar(&o.renewBefore, "renew-before", 30*24*time.Hour, "Make a new certificate when the current one expires within this.")
	flag.BoolVar(&o.force, "force", false, "Make a new CA and certificate even if the current ones are good.")
	flag.Parse()

	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	names := DNSNames(o.service, o.namespace)
	bundle, made, err := ensureSecret(ctx, cs, o, names)
	if err != nil {
		return err
	}
	if made {
		fmt.Printf("secret %s/%s: new CA and serving certificate for %v\n", o.namespace, o.secret, names)
	} else {
		fmt.Printf("secret %s/%s: certificate still valid, kept\n", o.namespace, o.secret)
	}
	patched, err := patchCABundle(ctx, cs, o, bundle)
	if err != nil {
		return err
	}
	fmt.Printf("mutatingwebhookconfiguration %s: caBundle set on %v\n", o.webhook, patched)
	return nil
}
