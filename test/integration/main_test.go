// Package integration runs the webhook in-process against a real
// kube-apiserver and etcd (test/controlplane), registered by a real
// MutatingWebhookConfiguration behind real TLS, and drives it with the
// pinned kubectl the way a user would.
package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/test/controlplane"
)

var (
	cp *controlplane.ControlPlane
	// stopWebhook stops the running webhook manager; tests that restart it
	// replace it.
	stopWebhook func()
)

// requireEnv makes a missing control plane a failure instead of a skip;
// `make test` sets it.
const requireEnv = "AETHER_REQUIRE_INTEGRATION"

func TestMain(m *testing.M) {
	if _, err := controlplane.Assets(); err != nil {
		if os.Getenv(requireEnv) != "" {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "SKIP integration tests:", err)
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "aether-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	started := time.Now()
	cp, err = controlplane.Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cp.Stop()
	if stopWebhook, err = cp.StartWebhook(cp.WebhookOptions()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if stopWebhook != nil {
			stopWebhook()
		}
	}()
	fmt.Fprintf(os.Stderr, "control plane and webhook up in %s\n", time.Since(started).Round(time.Millisecond))
	return m.Run()
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

func eventually(t *testing.T, what string, timeout time.Duration, ok func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := ok()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
