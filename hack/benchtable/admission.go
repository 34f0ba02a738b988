package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/aether-dev/aether-devhot/cmd/webhook/app"
	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/mutate"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
)

const admissionNS = "bench-admission"

// The registration states the admission figure compares.
const (
	// unregistered: the MutatingWebhookConfiguration is deleted.
	unregistered = "unregistered"
	// emptyWebhook: registered, served by a handler that allows without a
	// patch: the API server's own cost of calling a webhook.
	emptyWebhook = "empty webhook"
	// oneOpWebhook: registered, served by a handler that patches one
	// label: the API server's cost of applying any patch.
	oneOpWebhook = "one-op patch webhook"
	// ourWebhook: registered, served by mutate.Handler.
	ourWebhook = "webhook"
	// preMutated: unregistered, and the object created is the one the
	// webhook would have made: what storing the bigger object costs.
	preMutated = "pre-mutated, unregistered"
)

// benchPaths is where webhookOnly serves the stand-in handlers.
var benchPaths = map[string]string{emptyWebhook: "/empty", oneOpWebhook: "/one-op"}

// admission times labelled Deployment creates through the API server with
// the webhook registered, with an empty webhook registered in its place,
// and with its configuration deleted, in rounds that rotate the order so
// that drift on a shared machine falls on every state alike.
//
// The webhook here is a webhook-only server with the same handler on the
// same TLS endpoint: the manager's reconcilers would otherwise write
// ServiceAccounts, Roles and re-admission patches after each create, and
// more of them in one half than in the other.
func (b *runner) admission(saved *admissionregistrationv1.MutatingWebhookConfiguration) error {
	stop, err := b.webhookOnly()
	if err != nil {
		return err
	}
	defer stop()
	if err := b.namespace(admissionNS); err != nil {
		return err
	}
	// Leave it registered, as the rest of the run expects.
	defer func() {
		if err := b.register(saved, ourWebhook); err != nil {
			fmt.Fprintf(os.Stderr, "    re-registering the webhook: %v\n", err)
		}
	}()
	d, err := b.sample("adm")
	if err != nil {
		return err
	}
	opts := mutate.Options{FetcherImage: app.DefaultFetcherImage, Mode: b.mode}
	mutated, _, _, err := mutate.Deployment(d, opts)
	if err != nil {
		return err
	}
	objects := map[string]*appsv1.Deployment{ourWebhook: d, emptyWebhook: d, oneOpWebhook: d, unregistered: d, preMutated: mutated}
	deps := b.admin.AppsV1().Deployments(admissionNS)
	states := []string{ourWebhook, unregistered, emptyWebhook, preMutated, oneOpWebhook}
	for r := range b.cfg.rounds {
		for k := range states {
			state := states[(r+k)%len(states)]
			registration := state
			if state == preMutated {
				registration = unregistered
			}
			if err := b.register(saved, registration); err != nil {
				return err
			}
			// Three untimed creates: connections to etcd and to the
			// webhook are warm in every state.
			for i := range 3 + b.cfg.perRound {
				obj := objects[state].DeepCopy()
				obj.Name = fmt.Sprintf("adm-%d-%d-%d", r, k, i)
				t0 := time.Now()
				got, err := deps.Create(b.ctx, obj, metav1.CreateOptions{})
				lat := time.Since(t0)
				if err != nil {
					return err
				}
				if injected := got.Annotations[annotations.Injected] != ""; injected != (state == ourWebhook || state == preMutated) {
					return fmt.Errorf("create %s: injected=%t with the registration %q", obj.Name, injected, state)
				}
				if i >= 3 {
					b.res.admission[state] = append(b.res.admission[state], lat)
				}
			}
			if err := deps.DeleteCollection(b.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
				return err
			}
		}
	}
	a := b.res.admission
	fmt.Fprintf(os.Stderr, "    %d creates each, p50:", len(a[ourWebhook]))
	for _, st := range states {
		fmt.Fprintf(os.Stderr, " %s %v;", st, p50(a[st]))
	}
	fmt.Fprintln(os.Stderr)
	return nil
}

func p50(d []time.Duration) time.Duration {
	return bench.Percentile(d, 50).Round(10 * time.Microsecond)
}

// register puts the webhook configuration into state and waits until the
// API server acts on it: a server-side dry-run create of a labelled
// Deployment is mutated exactly when our webhook is registered, and an
// empty webhook is told apart from none by its call count.
func (b *runner) register(saved *admissionregistrationv1.MutatingWebhookConfiguration, state string) error {
	api := b.admin.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if err := api.Delete(b.ctx, saved.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if state != unregistered {
		c := saved.DeepCopy()
		c.ObjectMeta = metav1.ObjectMeta{Name: saved.Name, Labels: saved.Labels, Annotations: saved.Annotations}
		if path, ok := benchPaths[state]; ok {
			u, err := url.Parse(*c.Webhooks[0].ClientConfig.URL)
			if err != nil {
				return err
			}
			u.Path = path
			c.Webhooks[0].ClientConfig.URL = ptr.To(u.String())
		}
		if _, err := api.Create(b.ctx, c, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	probe, err := b.sample("probe")
	if err != nil {
		return err
	}
	return b.retry(15*time.Second, func() error {
		calls := b.calls()
		got, err := b.admin.AppsV1().Deployments(admissionNS).Create(b.ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		injected := got.Annotations[annotations.Injected] != ""
		now := b.calls()
		for st, n := range now {
			if called := n > calls[st]; called != (st == state) {
				return fmt.Errorf("registration %q not yet in effect", state)
			}
		}
		if injected != (state == ourWebhook) {
			return fmt.Errorf("registration %q not yet in effect", state)
		}
		return nil
	})
}

// calls reads how often each stand-in handler was called.
func (b *runner) calls() map[string]int64 {
	m := map[string]int64{}
	for st, n := range b.benchCalls {
		m[st] = n.Load()
	}
	return m
}

// webhookOnly serves mutate.Handler, and the stand-in handlers at benchPaths, where the registered configuration
// points, with the same options as the manager's webhook server (its
// TLS settings, HTTP/1.1 only), and nothing else.
func (b *runner) webhookOnly() (stop func(), err error) {
	o := b.cp.WebhookOptions()
	srv := webhook.NewServer(webhook.Options{
		Host: o.WebhookHost, Port: o.WebhookPort, CertDir: o.CertDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	})
	srv.Register(mutate.Path, &webhook.Admission{Handler: &mutate.Handler{
		Options: mutate.Options{FetcherImage: app.DefaultFetcherImage, Mode: b.mode},
	}})
	b.benchCalls = map[string]*atomic.Int64{}
	for st, path := range benchPaths {
		n := &atomic.Int64{}
		b.benchCalls[st] = n
		srv.Register(path, &webhook.Admission{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
			n.Add(1)
			if st == oneOpWebhook {
				return admission.Patched("", jsonpatch.NewOperation("add", "/metadata/labels/bench-patched", "1"))
			}
			return admission.Allowed("")
		})})
	}
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	stop = func() { cancel(); <-done }
	deadline := time.Now().Add(30 * time.Second)
	for srv.StartedChecker()(nil) != nil {
		select {
		case err := <-done:
			cancel()
			return nil, errors.Join(errors.New("webhook server ended"), err)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("webhook server did not start within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return stop, nil
}
