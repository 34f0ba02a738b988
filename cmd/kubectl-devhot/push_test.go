package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// TestDefaultStoreIsTheChartsStore reads the chart's default install,
// rendered into deploy/aether-devhot.yaml (test/chart keeps it fresh), and
// finds the Service that push addresses with no flags: its name and
// namespace, the port the service proxy names, and port 80, which the
// artifact URL http://<service>.<namespace>.svc leaves implicit; and that
// the webhook gives the fetchers that URL as the store's, which their store
// token goes to.
func TestDefaultStoreIsTheChartsStore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "aether-devhot.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var found *corev1.Service
	var webhook *appsv1.Deployment
	for _, doc := range bytes.Split(b, []byte("\n---\n")) {
		var obj metav1.PartialObjectMetadata
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		switch {
		case obj.Kind == "Service" && obj.Name == defaultStoreService:
			found = &corev1.Service{}
			if err := yaml.Unmarshal(doc, found); err != nil {
				t.Fatal(err)
			}
		case obj.Kind == "Deployment" && obj.Name == "aether-devhot":
			webhook = &appsv1.Deployment{}
			if err := yaml.Unmarshal(doc, webhook); err != nil {
				t.Fatal(err)
			}
		}
	}
	if webhook == nil || !slices.Contains(webhook.Spec.Template.Spec.Containers[0].Args, "--store-url="+artifactBase(defaultStoreNamespace, defaultStoreService)) {
		t.Errorf("the webhook is not given --store-url=%s: fetchers would not show their token to the URLs push writes", artifactBase(defaultStoreNamespace, defaultStoreService))
	}
	if found == nil {
		t.Fatalf("deploy/aether-devhot.yaml has no Service %s", defaultStoreService)
	}
	if found.Namespace != defaultStoreNamespace {
		t.Errorf("Service %s is in namespace %q, push looks in %q", defaultStoreService, found.Namespace, defaultStoreNamespace)
	}
	var port *corev1.ServicePort
	for i, p := range found.Spec.Ports {
		if p.Name == storePortName {
			port = &found.Spec.Ports[i]
		}
	}
	if port == nil || port.Port != 80 {
		t.Errorf("Service %s ports %+v: want port 80 named %s", defaultStoreService, found.Spec.Ports, storePortName)
	}
}
