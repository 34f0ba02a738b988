package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/aether-dev/aether-devhot/pkg/pack"
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

// TestDryRun lists what push would pack, with sizes, and what it leaves
// out and why, secrets included.
func TestDryRun(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"server.js":   "console.log(1)\n",
		".env":        "DB_PASSWORD=hunter2\n",
		".gitignore":  "dist/\n",
		"dist/out.js": "x",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	delta, err := pack.Delta(dir, pack.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	archive, err := pack.Dir(dir, pack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := dryRun(&out, dir, pack.Options{}, true); err != nil {
		t.Fatal(err)
	}
	if want := "would pack 2 files, 21 bytes, as an archive of "; !strings.Contains(out.String(), want+fmt.Sprint(len(archive.Data))+" bytes, "+archive.Digest+":\n") {
		t.Errorf("--archive --dry-run does not name the archive's digest:\n%s", out.String())
	}
	out.Reset()
	if err := dryRun(&out, dir, pack.Options{}, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"would pack 2 files, 21 bytes, as a delta release of 1 parts, " + delta.Digest + ":\n",
		"  .gitignore  6\n",
		"  server.js   15\n",
		"would leave out:\n",
		"  .env   looks like a secret (.env*); to pack it, add !.env to .devhotignore\n",
		"  dist/  .gitignore:1: dist/\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}
}
