// Command certs gives the webhook TLS on clusters without cert-manager: it
// keeps a CA in a Secret of its own (--ca-secret, tls.crt and tls.key, as
// cert-manager's CA issuer keeps one; the manager never mounts it), signs a
// serving certificate for the webhook Service's DNS names into the
// kubernetes.io/tls Secret that the manager mounts (tls.crt, tls.key,
// ca.crt), and patches the CA into the caBundle of every webhook of the
// MutatingWebhookConfiguration that calls that Service.
//
// It is idempotent: a serving certificate still valid for the names and not
// due for renewal is kept, and only the caBundle is (re)applied. Run it
// after `kubectl apply -f deploy/aether-devhot.yaml` (make deploy does), and
// again before the certificate expires (--renew-before): the new
// certificate is signed by the same CA, which the caBundle already trusts.
// --rotate-ca=begin, switch and finish replace the CA in three runs with
// both CAs trusted in between; docs/certs.md says how.
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
	caSecret    string
	webhook     string
	validity    time.Duration
	renewBefore time.Duration
	force       bool
	rotateCA    string
	reloadWait  time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "Kubeconfig file; empty: $KUBECONFIG, ~/.kube/config, or in-cluster.")
	flag.StringVar(&o.namespace, "namespace", "aether-system", "Namespace of the webhook Service and the Secret.")
	flag.StringVar(&o.service, "service", "aether-devhot", "The webhook Service; the certificate is made for its DNS names.")
	flag.StringVar(&o.secret, "secret", "aether-devhot-tls", "The kubernetes.io/tls Secret the manager mounts (the chart's certs.existingSecret, default <fullname>-tls).")
	flag.StringVar(&o.caSecret, "ca-secret", "aether-devhot-ca", "The kubernetes.io/tls Secret that keeps the CA and its key; the manager does not mount it.")
	flag.StringVar(&o.webhook, "webhook", "aether-devhot", "The MutatingWebhookConfiguration whose caBundle is patched.")
	flag.DurationVar(&o.validity, "validity", 365*24*time.Hour, "Lifetime of the serving certificate.")
	flag.DurationVar(&o.renewBefore, "renew-before", 30*24*time.Hour, "Make a new certificate when the current one expires within this.")
	flag.BoolVar(&o.force, "force", false, "Issue a new serving certificate, from the same CA, even if the current one is good.")
	flag.StringVar(&o.rotateCA, "rotate-ca", "", "Replace the CA, one step per run: begin (a new CA, trusted next to the old), switch (the serving certificate from the new CA), finish (the old CA no longer trusted).")
	flag.DurationVar(&o.reloadWait, "reload-wait", 2*time.Minute, "How long after --rotate-ca=switch finish waits: the kubelet's update of the mounted Secret plus the manager's reload.")
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
	return renew(ctx, cs, o, time.Now(), os.Stdout)
}
