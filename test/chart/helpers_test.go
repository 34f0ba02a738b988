package chart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// helm runs bin/helm and returns stdout; stderr goes into the error.
func helm(args ...string) (string, error) {
	cmd := exec.Command(helmBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w: %s%s", strings.Join(args, " "), err, errb.String(), out.String())
	}
	return out.String(), nil
}

// release names an install: objects are called <release>-aether-devhot
// (or <release> when it holds the chart name) in namespace ns.
type release struct{ name, namespace string }

// fullname is the chart's aether-devhot.fullname for r.
func (r release) fullname() string {
	if strings.Contains(r.name, "aether-devhot") {
		return r.name
	}
	return r.name + "-aether-devhot"
}

// serviceAccount is the manager's ServiceAccount as an RBAC user name.
func (r release) serviceAccount() string {
	return "system:serviceaccount:" + r.namespace + ":" + r.fullname()
}

// render runs helm template for r with --set pairs.
func render(r release, sets ...string) (string, error) {
	args := []string{"template", r.name, chartDir, "--namespace", r.namespace}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return helm(args...)
}

func mustRender(t *testing.T, r release, sets ...string) string {
	t.Helper()
	out, err := render(r, sets...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// objects decodes a multi-document manifest, skipping empty documents.
func objects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decoding rendered manifest: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// kinds counts the objects of each kind.
func kinds(objs []*unstructured.Unstructured) map[string]int {
	n := map[string]int{}
	for _, o := range objs {
		n[o.GetKind()]++
	}
	return n
}

// only returns the one object of kind, failing if there is not exactly one.
func only(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(found), kind)
	}
	return found[0]
}

// lookup returns the object of kind called name, or nil.
func lookup(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// named returns the object of kind called name, failing if there is none.
func named(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := lookup(objs, kind, name)
	if o == nil {
		t.Fatalf("no %s %s among %v", kind, name, kinds(objs))
	}
	return o
}

// into converts u into a typed object.
func into[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return &v
}

// deployment is the manager's Deployment of the release aether-devhot.
func deployment(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	return into[appsv1.Deployment](t, named(t, objs, "Deployment", "aether-devhot"))
}

// storeDeployment is the artifact store's Deployment of the release
// aether-devhot.
func storeDeployment(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	return into[appsv1.Deployment](t, named(t, objs, "Deployment", "aether-devhot-store"))
}

func kubectl(t *testing.T, stdin string, args ...string) (string, string) {
	t.Helper()
	out, stderr, err := cp.Run(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out, stderr
}

// applyServerSide applies manifest with server-side apply and fails the
// test on any warning: Pod Security and deprecated APIs speak through them.
func applyServerSide(t *testing.T, manifest string) {
	t.Helper()
	if _, stderr := kubectl(t, manifest, "apply", "--server-side", "--field-manager", fieldManager, "-f", "-"); strings.Contains(stderr, "Warning") {
		t.Errorf("kubectl apply warned:\n%s", stderr)
	}
}

// install renders the chart for r, creates r's namespace (labelled to warn
// under Pod Security "restricted") unless the chart renders it, applies
// every object server-side, and deletes them after the test. It returns
// the manifest.
func install(t *testing.T, r release, sets ...string) string {
	t.Helper()
	manifest := mustRender(t, r, sets...)
	if kinds(objects(t, manifest))["Namespace"] == 0 {
		namespace(t, r.namespace, map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted",
			"pod-security.kubernetes.io/warn":    "restricted",
		})
	}
	applyServerSide(t, manifest)
	t.Cleanup(func() {
		// No namespace controller runs here, so a namespace stays
		// Terminating; --wait=false does not wait for it.
		if _, _, err := cp.Run(manifest, "delete", "--ignore-not-found", "--wait=false", "-f", "-"); err != nil {
			t.Error(err)
		}
	})
	return manifest
}

// namespace creates ns with labels.
func namespace(t *testing.T, ns string, labels map[string]string) {
	t.Helper()
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}
	if _, err := cp.Clientset.CoreV1().Namespaces().Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
