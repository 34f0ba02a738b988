package chart

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/aether-dev/aether-devhot/cmd/webhook/app"
	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/mutate"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// TestManagerPatchFence asks the real API server, as the manager's
// ServiceAccount, for the patches its RBAC allows on any Deployment: the
// chart's ValidatingAdmissionPolicy lets through only those on Deployments
// the webhook sees or injected, and of those none that touch labels or the
// spec beside the pod template. An admin is not fenced.
func TestManagerPatchFence(t *testing.T) {
	r := release{"fence", "fence-system"}
	install(t, r)
	const ns = "fence-app"
	namespace(t, ns, nil)
	plain := labelledSample(t, ns, "plain")
	delete(plain.Labels, annotations.DevHot)
	create(t, plain)
	create(t, labelledSample(t, ns, "labelled"))
	reverting := injectedSample(t, ns, "reverting")
	delete(reverting.Labels, annotations.DevHot)
	create(t, reverting)

	patch := func(user, name, body string) error {
		args := []string{"-n", ns, "patch", "deployment", name, "--type=merge", "-p", body}
		if user != "" {
			args = append(args, "--as", user)
		}
		_, _, err := cp.Run("", args...)
		return err
	}
	manager := r.serviceAccount()
	// The policy takes a moment to be enforced after it is created.
	wait.For(t, "the fence around an unlabelled Deployment", 20*time.Second, func() error {
		err := patch(manager, "plain", `{"metadata":{"annotations":{"x":"y"}}}`)
		if err == nil {
			return errors.New("the manager patched an unlabelled Deployment")
		}
		if !strings.Contains(err.Error(), "may change only Deployments labelled aether.dev/dev-hot=true or carrying aether.dev/injected; fence-app/plain is neither") {
			return err
		}
		return nil
	})
	for _, tc := range []struct {
		name, user, deployment, body string
		denied                       string
	}{
		{"readmit's empty patch of a labelled one", manager, "labelled", `{}`, ""},
		{"an annotation of a labelled one", manager, "labelled", `{"metadata":{"annotations":{"x":"y"}}}`, ""},
		{"the pod template of a labelled one", manager, "labelled", `{"spec":{"template":{"spec":{"terminationGracePeriodSeconds":5}}}}`, ""},
		{"the revert of an injected one", manager, "reverting", `{"metadata":{"annotations":{"` + annotations.Injected + `":null}}}`, ""},
		{"its label", manager, "labelled", `{"metadata":{"labels":{"` + annotations.DevHot + `":null}}}`, "may not change a Deployment's labels"},
		{"a label added to an unlabelled one", manager, "plain", `{"metadata":{"labels":{"` + annotations.DevHot + `":"true"}}}`, "is neither"},
		{"the replicas of a labelled one", manager, "labelled", `{"spec":{"replicas":3}}`, "only a Deployment's pod template and annotations"},
		{"the strategy of a labelled one", manager, "labelled", `{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}`, "only a Deployment's pod template and annotations"},
		{"an admin, an unlabelled one", "", "plain", `{"metadata":{"annotations":{"x":"y"}}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := patch(tc.user, tc.deployment, tc.body)
			switch {
			case tc.denied == "" && err != nil:
				t.Errorf("denied: %v", err)
			case tc.denied != "" && err == nil:
				t.Errorf("allowed, want a denial saying %q", tc.denied)
			case tc.denied != "" && !strings.Contains(err.Error(), tc.denied):
				t.Errorf("denied with %v, want %q", err, tc.denied)
			}
		})
	}
}

// labelledSample is test/testdata/deployment.yaml, labelled, named name in
// ns.
func labelledSample(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	d.Name, d.Namespace = name, ns
	return &d
}

// injectedSample is what the webhook makes of labelledSample.
func injectedSample(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	out, outcome, _, err := mutate.Deployment(labelledSample(t, ns, name), mutate.Options{FetcherImage: app.DefaultFetcherImage, Mode: sidecar.ModeNative})
	if err != nil || outcome != mutate.Injected {
		t.Fatalf("mutate: %s, %v", outcome, err)
	}
	return out
}

// create creates d as the admin.
func create(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if _, err := cp.Clientset.AppsV1().Deployments(d.Namespace).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
