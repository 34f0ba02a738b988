// Package integration runs the webhook in-process against a real
// kube-apiserver and etcd (test/framework/controlplane), registered by a real
// MutatingWebhookConfiguration behind real TLS, and drives it with the
// pinned kubectl the way a user would.
package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
)

var (
	cp *controlplane.ControlPlane
	// stopWebhook stops the running webhook manager; tests that restart it
	// replace it.
	stopWebhook func()
)

func TestMain(m *testing.M) {
	controlplane.Main(m, "integration", func(c *controlplane.ControlPlane) (func(), error) {
		cp = c
		var err error
		if stopWebhook, err = cp.StartWebhook(cp.WebhookOptions()); err != nil {
			return nil, err
		}
		return func() {
			if stopWebhook != nil {
				stopWebhook()
			}
		}, nil
	})
}

// sample returns test/testdata/deployment.yaml, edited by the replacer
// pairs (old, new, ...).
func sample(t *testing.T, pairs ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("sample has no %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// namespace creates a fresh namespace with the given labels.
func namespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := cp.Clientset.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func kubectl(t *testing.T, stdin string, args ...string) (string, string) {
	t.Helper()
	out, stderr, err := cp.Run(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out, stderr
}

func getDeployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	out, _ := kubectl(t, "", "-n", ns, "get", "deployment", name, "-o", "json")
	var d appsv1.Deployment
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
