package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
)

// webhookConfigName is the MutatingWebhookConfiguration of
// test/testdata/webhook.yaml, as envtest registered it.
const webhookConfigName = "aether-devhot"

// savedWebhookConfig reads the registered configuration: its URL and CA
// are how the throughput phase reaches the webhook, and the admission
// phase re-creates it from this copy.
func (b *runner) savedWebhookConfig() (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	c, err := b.admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(b.ctx, webhookConfigName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if len(c.Webhooks) != 1 || c.Webhooks[0].ClientConfig.URL == nil {
		return nil, fmt.Errorf("webhook configuration %s: want one webhook with a URL", webhookConfigName)
	}
	return c, nil
}

// sample is test/testdata/deployment.yaml (labelled) renamed to name.
func (b *runner) sample(name string) (*appsv1.Deployment, error) {
	raw, err := os.ReadFile(filepath.Join(b.root, "test", "testdata", "deployment.yaml"))
	if err != nil {
		return nil, err
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	d.Name = name
	return &d, nil
}

// namespace creates ns unless it exists.
func (b *runner) namespace(ns string) error {
	_, err := b.admin.CoreV1().Namespaces().Create(b.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// deploy creates the labelled sample as ns/name through the webhook,
// waits for the reconciler's RBAC and mints the pod's token, as a pod of
// it would run. It returns the mutated object and the fetcher's
// kubeconfig.
func (b *runner) deploy(ns, name string) (*appsv1.Deployment, string, error) {
	if err := b.namespace(ns); err != nil {
		return nil, "", err
	}
	d, err := b.sample(name)
	if err != nil {
		return nil, "", err
	}
	dep, err := b.admin.AppsV1().Deployments(ns).Create(b.ctx, d, metav1.CreateOptions{})
	if err != nil {
		return nil, "", err
	}
	if dep.Annotations[annotations.Injected] == "" {
		return nil, "", fmt.Errorf("deployment %s/%s was not mutated", ns, name)
	}
	kc := filepath.Join(b.dir, ns+"-"+name+".kubeconfig")
	sa := dep.Spec.Template.Spec.ServiceAccountName
	if err := b.retry(15*time.Second, func() error { return b.cp.ServiceAccountKubeconfig(ns, sa, kc) }); err != nil {
		return nil, "", err
	}
	err = b.retry(15*time.Second, func() error {
		_, err := b.admin.RbacV1().RoleBindings(ns).Get(b.ctx, "aether-devhot-"+name, metav1.GetOptions{})
		return err
	})
	return dep, kc, err
}

// push serves a and sets the Deployment's digest and URL annotations; it
// returns the moment just before the request, where latency starts.
func (b *runner) push(ns, name string, a artifact.Artifact, blob string) (time.Time, error) {
	return b.annotate(ns, name, a.Digest, b.arts.Put(blob, a.Data))
}

// annotate sets the digest and URL annotations in one merge patch, as
// `kubectl annotate` does without its process start; it returns the
// moment just before the request.
func (b *runner) annotate(ns, name, digest, url string) (time.Time, error) {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		annotations.Digest: digest, annotations.ArtifactURL: url,
	}}})
	if err != nil {
		return time.Time{}, err
	}
	t0 := time.Now()
	_, err = b.admin.AppsV1().Deployments(ns).Patch(b.ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	return t0, err
}

// metrics is one scrape of the API server's own /metrics.
type metrics struct {
	requests, longRunning []bench.Sample
}

// scrape reads the API server's /metrics as admin.
func (b *runner) scrape() (metrics, error) {
	raw, err := b.admin.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(b.ctx)
	if err != nil {
		return metrics{}, err
	}
	var m metrics
	if m.requests, err = bench.ParseMetrics(raw, "apiserver_request_total"); err != nil {
		return m, err
	}
	m.longRunning, err = bench.ParseMetrics(raw, "apiserver_longrunning_requests")
	return m, err
}

// fetcherRequest is the filter of the API load figure: requests for
// apps/v1 Deployments inside a namespace (scope "namespace" for LIST and
// WATCH, "resource" for a named GET or a metadata.name field selector).
// The manager's informers list and watch cluster-wide (scope "cluster"),
// and nothing else reads Deployments while the window is open.
func fetcherRequest(l map[string]string) bool {
	return l["group"] == "apps" && l["resource"] == "deployments" && l["scope"] != "cluster"
}

// retry calls f every 200 ms until it succeeds or timeout passes.
func (b *runner) retry(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) || b.ctx.Err() != nil {
			return err
		}
		if err := sleep(b.ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}
