package chart

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/aether-dev/aether-devhot/cmd/webhook/app"
	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/names"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// access is one `kubectl auth can-i` question: verb on resource (with
// subresource, and the object's name if any) in namespace, "" meaning every
// namespace.
type access struct {
	verb, resource, subresource, namespace string
	name                                   string
}

func (a access) String() string {
	s := a.verb + " " + a.resource
	if a.name != "" {
		s += "/" + a.name
	}
	if a.subresource != "" {
		s += " (" + a.subresource + ")"
	}
	if a.namespace != "" {
		s += " in " + a.namespace
	}
	return s
}

// canI asks the API server, with `kubectl auth can-i --as user`, whether
// user may do a.
func canI(t *testing.T, user string, a access) bool {
	t.Helper()
	resource := a.resource
	if a.name != "" {
		resource += "/" + a.name
	}
	args := []string{"auth", "can-i", a.verb, resource, "--as", user}
	if a.subresource != "" {
		args = append(args, "--subresource", a.subresource)
	}
	if a.namespace == "" {
		args = append(args, "--all-namespaces")
	} else {
		args = append(args, "--namespace", a.namespace)
	}
	// can-i exits 1 for "no".
	out, _, err := cp.Run("", args...)
	got := strings.TrimSpace(out)
	if got != "yes" && got != "no" {
		t.Fatalf("kubectl %s: %q, %v", strings.Join(args, " "), got, err)
	}
	return got == "yes"
}

// accessCheck is an access and whether the manager must have it.
type accessCheck struct {
	access
	want bool
}

// managerAccess is what the manager's ServiceAccount must and must not be
// allowed, in release namespace ns; fleet is fleetMetrics.enabled, and
// pullSecrets is imageLookup.pullSecrets.
func managerAccess(ns string, fleet bool, pullSecrets []string) []accessCheck {
	var rows []accessCheck
	allow := func(want bool, verbs []string, resource, sub, ns string) {
		for _, v := range verbs {
			rows = append(rows, accessCheck{access{verb: v, resource: resource, subresource: sub, namespace: ns}, want})
		}
	}
	crud := []string{"get", "list", "watch", "create", "update", "delete"}
	// What the code calls (templates/rbac.yaml says where).
	allow(true, []string{"get", "list", "watch", "patch"}, "deployments.apps", "", "")
	allow(true, []string{"update"}, "deployments.apps", "finalizers", "")
	allow(true, crud, "serviceaccounts", "", "")
	allow(true, crud, "roles.rbac.authorization.k8s.io", "", "")
	allow(true, crud, "rolebindings.rbac.authorization.k8s.io", "", "")
	allow(true, []string{"create", "patch"}, "events", "", "")
	allow(true, []string{"create", "patch"}, "events.events.k8s.io", "", "")
	allow(true, []string{"get", "create", "update"}, "leases.coordination.k8s.io", "", ns)
	allow(fleet, []string{"list", "watch"}, "pods", "", "")
	allow(fleet, []string{"get"}, "pods", "log", "")
	allow(fleet, []string{"list", "watch"}, "replicasets.apps", "", "")
	for _, name := range pullSecrets {
		rows = append(rows, accessCheck{access{verb: "get", resource: "secrets", namespace: ns, name: name}, true})
		rows = append(rows, accessCheck{access{verb: "get", resource: "secrets", namespace: "default", name: name}, false})
	}
	rows = append(rows, accessCheck{access{verb: "get", resource: "secrets", namespace: ns, name: "someone-elses"}, false})
	// And no more: it never changes a Deployment's spec, reads Secrets,
	// mints tokens, escalates or binds beyond what it holds, or touches
	// webhook configurations or other namespaces' Leases.
	allow(false, []string{"create", "update", "delete"}, "deployments.apps", "", "")
	allow(false, []string{"patch"}, "serviceaccounts", "", "")
	allow(false, []string{"create"}, "serviceaccounts", "token", "")
	allow(false, []string{"escalate", "bind", "patch"}, "roles.rbac.authorization.k8s.io", "", "")
	allow(false, []string{"create"}, "clusterroles.rbac.authorization.k8s.io", "", "")
	allow(false, []string{"create"}, "clusterrolebindings.rbac.authorization.k8s.io", "", "")
	allow(false, []string{"get", "list"}, "secrets", "", "")
	allow(false, []string{"get"}, "secrets", "", ns)
	allow(false, []string{"get", "list", "update"}, "configmaps", "", "")
	allow(false, []string{"list", "delete"}, "leases.coordination.k8s.io", "", ns)
	allow(false, []string{"get", "update"}, "leases.coordination.k8s.io", "", "default")
	allow(false, []string{"patch", "update"}, "mutatingwebhookconfigurations.admissionregistration.k8s.io", "", "")
	allow(false, []string{"delete"}, "events", "", "")
	allow(false, []string{"create"}, "pods", "exec", "")
	allow(false, []string{"get", "delete"}, "pods", "", "")
	allow(false, []string{"get"}, "nodes", "", "")
	return rows
}

// TestManagerRBACCanI installs the chart and asks the API server, with
// `kubectl auth can-i --as` the manager's ServiceAccount, for each thing the
// code does and for things it must not be able to do.
func TestManagerRBACCanI(t *testing.T) {
	for _, tc := range []struct {
		name        string
		sets        []string
		fleet       bool
		pullSecrets []string
	}{
		{"defaults", nil, false, nil},
		{"fleet metrics", toggles["fleet metrics"], true, nil},
		{"pull secrets", toggles["pull secrets"], false, []string{"regcred", "mirror-cred"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slug := strings.ReplaceAll(tc.name, " ", "-")
			r := release{"rbac-" + slug, "rbac-" + slug}
			install(t, r, tc.sets...)
			for _, c := range managerAccess(r.namespace, tc.fleet, tc.pullSecrets) {
				if got := canI(t, r.serviceAccount(), c.access); got != c.want {
					t.Errorf("can %s: %v, want %v", c.access, got, c.want)
				}
			}
		})
	}
}

// TestManagerRunsUnderItsServiceAccount runs the manager with a token of
// the chart's ServiceAccount, so the API server enforces the rendered RBAC
// and the patch fence on every call the code really makes: both
// reconcilers' caches must sync, the RBAC reconciler must create and later
// delete an injected Deployment's ServiceAccount, Role and RoleBinding,
// readmit must re-admit a labelled Deployment that missed injection (no
// webhook is registered here, see TestMain, so it stays uninjected) and
// revert one unlabelled while the webhook was down, and both must write
// Events.
func TestManagerRunsUnderItsServiceAccount(t *testing.T) {
	r := release{"run", "rbac-run"}
	install(t, r)
	kc := filepath.Join(t.TempDir(), "manager.kubeconfig")
	wait.For(t, "a token for "+r.serviceAccount(), 10*time.Second, func() error {
		return cp.ServiceAccountKubeconfig(r.namespace, r.fullname(), kc)
	})
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := app.NewManager(cfg, cp.WebhookOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	const ns, name = "rbac-run-app", "hello"
	namespace(t, ns, nil)
	// What the webhook makes of the sample: its pods run as <name>-devhot,
	// which the reconciler then creates.
	create(t, injectedSample(t, ns, name))
	// Admitted while the webhook was down.
	create(t, labelledSample(t, ns, "late"))
	gone := injectedSample(t, ns, "gone")
	delete(gone.Labels, annotations.DevHot)
	create(t, gone)

	owned := []string{"serviceaccount/" + names.ServiceAccount(name), "role/" + names.Role(name), "rolebinding/" + names.Role(name)}
	wait.For(t, "the fetcher's RBAC, made by the manager", 30*time.Second, func() error {
		_, _, err := cp.Run("", append([]string{"-n", ns, "get"}, owned...)...)
		return err
	})
	wait.For(t, "gone reverted by the manager", 30*time.Second, func() error {
		d, err := cp.Clientset.AppsV1().Deployments(ns).Get(context.Background(), "gone", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, ok := d.Annotations[annotations.Injected]; ok {
			return fmt.Errorf("still injected")
		}
		return nil
	})
	wait.For(t, "the manager's Events", 10*time.Second, func() error {
		list, err := cp.Clientset.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		var reasons []string
		for _, e := range list.Items {
			reasons = append(reasons, e.Reason)
		}
		for _, want := range []string{"RBACCreated", "NotInjected", "Reverted"} {
			if !slices.Contains(reasons, want) {
				return fmt.Errorf("no %s event among %v", want, reasons)
			}
		}
		return nil
	})

	// Unlabelled with no webhook to revert it: the manager reverts it, then
	// removes its RBAC.
	kubectl(t, "", "-n", ns, "label", "deployment", name, annotations.DevHot+"-")
	wait.For(t, "the fetcher's RBAC removed with the label", 30*time.Second, func() error {
		out, _, err := cp.Run("", append([]string{"-n", ns, "get", "--ignore-not-found", "-o", "name"}, owned...)...)
		if err != nil {
			return err
		}
		if left := strings.TrimSpace(out); left != "" {
			return fmt.Errorf("still there: %s", left)
		}
		return nil
	})
}
