package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/cmd/webhook/app"
	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/names"
	"github.com/aether-dev/aether-devhot/pkg/rbac"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// The label removed while the webhook is down (failurePolicy Ignore): the
// stored Deployment keeps the fetcher and names hello-devhot, and no later
// admission would see it, since neither the old nor the new object has the
// label. Once the manager is back, readmit reverts it to the original, and
// only then does the RBAC reconciler delete the fetcher's ServiceAccount.
func TestLabelRemovedWhileWebhookDownIsReverted(t *testing.T) {
	ns := namespace(t, nil)
	kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
	waitRBAC(t, ns, "hello", "hello-devhot")

	webhookDown(t)
	kubectl(t, "", "-n", ns, "label", "deploy", "hello", annotations.DevHot+"-")
	d := getDeployment(t, ns, "hello")
	if _, ok := d.Annotations[annotations.Injected]; !ok || d.Spec.Template.Spec.ServiceAccountName != "hello-devhot" {
		t.Fatalf("label removal was reverted with the webhook down (SA %q): the test proves nothing", d.Spec.Template.Spec.ServiceAccountName)
	}

	webhookUp(t, cp.WebhookOptions())
	wait.For(t, "the Deployment reverted", 10*time.Second, func() error {
		d := getDeployment(t, ns, "hello")
		spec := d.Spec.Template.Spec
		if got := containerNames(spec.InitContainers); !slices.Equal(got, []string{"fetch"}) {
			return fmt.Errorf("initContainers = %v", got)
		}
		if want := []string{"node", "server.js"}; !slices.Equal(spec.Containers[0].Command, want) {
			return fmt.Errorf("command = %q", spec.Containers[0].Command)
		}
		if spec.ServiceAccountName != "" || spec.AutomountServiceAccountToken != nil || len(spec.Volumes) != 1 {
			return fmt.Errorf("serviceAccountName %q, automount %v, %d volumes", spec.ServiceAccountName, spec.AutomountServiceAccountToken, len(spec.Volumes))
		}
		for _, k := range []string{annotations.Injected, annotations.DevHot} {
			if _, ok := d.Annotations[k]; ok {
				return fmt.Errorf("annotation %s left", k)
			}
		}
		return nil
	})
	wait.For(t, "the fetcher's RBAC removed after the revert", 10*time.Second, func() error {
		_, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Get(context.Background(), "hello-devhot", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("service account still there (%v)", err)
		}
		return nil
	})
	waitEvent(t, ns, "Reverted", "removed while the webhook was unreachable")
}

// A template that still names hello-devhot keeps it: here the injection
// record was damaged while the webhook was down, so it cannot be reverted,
// and a second Deployment of the user's runs as hello-devhot too. Neither
// case may lose the ServiceAccount: new pods would be refused without it.
func TestServiceAccountKeptWhileATemplateNamesIt(t *testing.T) {
	t.Run("unrevertable record", func(t *testing.T) {
		ns := namespace(t, nil)
		kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
		waitRBAC(t, ns, "hello", "hello-devhot")
		webhookDown(t)
		kubectl(t, "", "-n", ns, "label", "deploy", "hello", annotations.DevHot+"-")
		kubectl(t, "", "-n", ns, "annotate", "--overwrite", "deploy", "hello", annotations.Injected+"={damaged")
		webhookUp(t, cp.WebhookOptions())

		// The old reconciler deleted them within a second of starting.
		time.Sleep(3 * time.Second)
		for _, get := range []func() error{
			func() error {
				_, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Get(context.Background(), "hello-devhot", metav1.GetOptions{})
				return err
			},
			func() error {
				_, err := cp.Clientset.RbacV1().Roles(ns).Get(context.Background(), names.Role("hello"), metav1.GetOptions{})
				return err
			},
		} {
			if err := get(); err != nil {
				t.Errorf("deleted while the template still runs the fetcher as hello-devhot: %v", err)
			}
		}
		waitEvent(t, ns, "RevertFailed", "apply the original manifest")
	})
	t.Run("another Deployment", func(t *testing.T) {
		ns := namespace(t, nil)
		kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
		waitRBAC(t, ns, "hello", "hello-devhot")
		kubectl(t, sample(t, "  name: hello\n", "  name: sidekick\n", `    aether.dev/dev-hot: "true"`, "",
			"      securityContext:\n        runAsNonRoot", "      serviceAccountName: hello-devhot\n      securityContext:\n        runAsNonRoot"),
			"-n", ns, "apply", "-f", "-")
		kubectl(t, "", "-n", ns, "label", "deploy", "hello", annotations.DevHot+"-")

		wait.For(t, "the Role removed", 10*time.Second, func() error {
			_, err := cp.Clientset.RbacV1().Roles(ns).Get(context.Background(), names.Role("hello"), metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("role still there (%v)", err)
			}
			return nil
		})
		if _, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Get(context.Background(), "hello-devhot", metav1.GetOptions{}); err != nil {
			t.Errorf("hello-devhot deleted while sidekick runs as it: %v", err)
		}
		waitEvent(t, ns, "RBACKept", "Deployment sidekick still names it")
	})
}

// A labelled Deployment in a namespace the webhook's namespaceSelector
// leaves out is never injected: readmit says so once and stops, instead of
// patching it every 5 s, and the RBAC reconciler binds nothing to its pods'
// account.
func TestReadmitGivesUpOnExcludedNamespace(t *testing.T) {
	ns := namespace(t, nil)
	excludeNamespace(t, ns)
	webhookDown(t)
	kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
	// Gone before the next manager, which does not exclude ns, injects it.
	t.Cleanup(func() { kubectl(t, "", "-n", ns, "delete", "deployment", "hello") })

	o := cp.WebhookOptions()
	o.ExcludeNamespaces = []string{ns}
	webhookUp(t, o)
	if _, ok := getDeployment(t, ns, "hello").Annotations[annotations.Injected]; ok {
		t.Fatal("injected in an excluded namespace: the test proves nothing")
	}
	// The restarted manager's first pass over the cluster, this
	// Deployment included; then nothing more. The old reconciler patched
	// it again every 5 s, forever.
	before := settled(t, "devhot-readmit")
	time.Sleep(12 * time.Second)
	if n := reconciles(t, "devhot-readmit") - before; n != 0 {
		t.Errorf("readmit reconciled %v more times in 12 s, want 0", n)
	}
	waitEvent(t, ns, "NotInjected", "which the webhook never sees")
	// Nor does it get the fetcher's Role, which would go to the pods' own
	// account, the namespace's default.
	if _, err := cp.Clientset.RbacV1().RoleBindings(ns).Get(context.Background(), names.Role("hello"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("RoleBinding %s for a Deployment without the fetcher: %v", names.Role("hello"), err)
	}
}

// An object that holds one of our names but is not ours is never adopted,
// changed or deleted: an unlabelled ServiceAccount (invisible to the
// manager's cache, so Create meets it), and a Role labelled as ours but
// controlled by nothing. The reconciler says so in a Warning Event that
// names the object and the fix, and retries with a backoff (it used to
// retry every 100 ms, silently, forever); once the user deletes the
// object, the manager makes its own.
func TestForeignRBACIsNotAdopted(t *testing.T) {
	t.Run("unlabelled ServiceAccount", func(t *testing.T) {
		ns := namespace(t, nil)
		foreign := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "hello-devhot", Namespace: ns}}
		if _, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Create(context.Background(), foreign, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		before := settled(t, "devhot-rbac")
		kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
		time.Sleep(4 * time.Second)
		// The first pass and the first retry, 2.5 to 5 s later; the old
		// loop made about 40.
		if n := reconciles(t, "devhot-rbac") - before; n > 3 {
			t.Errorf("%v reconciles within 4 s of the conflict, want a backoff", n)
		}
		sa, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Get(context.Background(), "hello-devhot", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(sa.OwnerReferences) != 0 || sa.Labels[rbac.ManagedByLabel] != "" {
			t.Errorf("the user's ServiceAccount was adopted: owners %v, labels %v", sa.OwnerReferences, sa.Labels)
		}
		waitEvent(t, ns, "RBACConflict", "ServiceAccount "+ns+"/hello-devhot exists and was not made by aether-devhot")

		if err := cp.Clientset.CoreV1().ServiceAccounts(ns).Delete(context.Background(), "hello-devhot", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRBAC(t, ns, "hello", "hello-devhot")
	})
	t.Run("labelled Role owned by nobody", func(t *testing.T) {
		ns := namespace(t, nil)
		orphan := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: names.Role("hello"), Namespace: ns,
			Labels: map[string]string{rbac.ManagedByLabel: rbac.ManagedBy}}}
		if _, err := cp.Clientset.RbacV1().Roles(ns).Create(context.Background(), orphan, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
		wait.For(t, "the fetcher's ServiceAccount", 10*time.Second, func() error {
			_, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Get(context.Background(), "hello-devhot", metav1.GetOptions{})
			return err
		})
		time.Sleep(time.Second)
		kubectl(t, "", "-n", ns, "label", "deploy", "hello", annotations.DevHot+"-")
		wait.For(t, "the fetcher's ServiceAccount removed with the label", 10*time.Second, func() error {
			_, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Get(context.Background(), "hello-devhot", metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("still there (%v)", err)
			}
			return nil
		})
		role, err := cp.Clientset.RbacV1().Roles(ns).Get(context.Background(), names.Role("hello"), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the orphan Role was deleted with the label: %v", err)
		}
		if len(role.OwnerReferences) != 0 || len(role.Rules) != 0 {
			t.Errorf("the orphan Role was adopted: owners %v, rules %v", role.OwnerReferences, role.Rules)
		}
		waitEvent(t, ns, "RBACConflict", "Role "+ns+"/"+names.Role("hello")+" is labelled "+rbac.ManagedByLabel+"="+rbac.ManagedBy+" but controlled by nothing")
	})
}

// webhookDown stops the manager (webhook and reconcilers) and lets the API
// server admit labelled Deployments without it; the Cleanup brings back
// failurePolicy Fail and a manager with the default options.
func webhookDown(t *testing.T) {
	t.Helper()
	setFailurePolicy(t, "Ignore")
	if stopWebhook != nil {
		stopWebhook()
		stopWebhook = nil
	}
	t.Cleanup(func() {
		setFailurePolicy(t, "Fail")
		if stopWebhook != nil {
			stopWebhook()
		}
		var err error
		if stopWebhook, err = cp.StartWebhook(cp.WebhookOptions()); err != nil {
			t.Fatal(err)
		}
	})
}

// webhookUp starts the manager with o, after webhookDown.
func webhookUp(t *testing.T, o app.Options) {
	t.Helper()
	var err error
	if stopWebhook, err = cp.StartWebhook(o); err != nil {
		t.Fatal(err)
	}
}

// excludeNamespace leaves ns out of the webhook configuration, as the
// chart's namespaceSelector does with its own namespace, until t ends.
func excludeNamespace(t *testing.T, ns string) {
	t.Helper()
	kubectl(t, "", "patch", "mutatingwebhookconfiguration", "aether-devhot", "--type=json", "-p",
		fmt.Sprintf(`[{"op":"add","path":"/webhooks/0/namespaceSelector","value":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":[%q]}]}}]`, ns))
	t.Cleanup(func() {
		kubectl(t, "", "patch", "mutatingwebhookconfiguration", "aether-devhot", "--type=json", "-p",
			`[{"op":"replace","path":"/webhooks/0/namespaceSelector","value":{}}]`)
	})
}

// waitEvent waits for an Event in ns with reason whose note holds text.
func waitEvent(t *testing.T, ns, reason, text string) {
	t.Helper()
	wait.For(t, reason+" event", 15*time.Second, func() error {
		list, err := cp.Clientset.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Reason == reason && strings.Contains(e.Note, text) {
				t.Logf("%s: %s", e.Reason, e.Note)
				return nil
			}
			seen = append(seen, e.Reason+": "+e.Note)
		}
		return fmt.Errorf("no %s event with %q among %q", reason, text, seen)
	})
}

// settled waits until controller has made no reconcile for 2 s (a
// restarted manager's first pass over every Deployment of the earlier
// tests is over) and returns its count.
func settled(t *testing.T, controller string) float64 {
	t.Helper()
	last := reconciles(t, controller)
	for quiet := time.Now(); time.Since(quiet) < 2*time.Second; time.Sleep(100 * time.Millisecond) {
		if n := reconciles(t, controller); n != last {
			last, quiet = n, time.Now()
		}
	}
	return last
}

// reconciles reads controller_runtime_reconcile_total of controller, all
// results summed.
func reconciles(t *testing.T, controller string) float64 {
	t.Helper()
	n, _ := counter(t, "controller_runtime_reconcile_total", "controller", controller)
	return n
}

// The pods ran as the namespace's default account, whose imagePullSecrets
// the ServiceAccount admission plugin gave them; moved to hello-devhot,
// they must still get them, or a private image no longer pulls. The
// fetcher's account carries the default's pull secrets, and follows a
// change of them at the next reconcile of the Deployment.
func TestFetcherAccountKeepsTheDefaultsPullSecrets(t *testing.T) {
	ns := namespace(t, nil)
	ctx := context.Background()
	setPull := func(names ...string) {
		t.Helper()
		var refs []corev1.LocalObjectReference
		for _, n := range names {
			refs = append(refs, corev1.LocalObjectReference{Name: n})
		}
		sa, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) { // no service account controller here
			_, err = cp.Clientset.CoreV1().ServiceAccounts(ns).Create(ctx,
				&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}, ImagePullSecrets: refs}, metav1.CreateOptions{})
		} else if err == nil {
			sa.ImagePullSecrets = refs
			_, err = cp.Clientset.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	pullOf := func() string {
		sa, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Get(ctx, "hello-devhot", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		var got []string
		for _, r := range sa.ImagePullSecrets {
			got = append(got, r.Name)
		}
		return strings.Join(got, ",")
	}
	setPull("regcred")
	kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
	waitRBAC(t, ns, "hello", "hello-devhot")
	wait.For(t, "hello-devhot with the default's pull secrets", 10*time.Second, func() error {
		if got := pullOf(); got != "regcred" {
			return fmt.Errorf("imagePullSecrets %q, want regcred", got)
		}
		return nil
	})

	setPull("regcred", "mirror")
	kubectl(t, "", "-n", ns, "annotate", "--overwrite", "deploy", "hello", "touch=1")
	wait.For(t, "the change followed", 10*time.Second, func() error {
		if got := pullOf(); got != "regcred,mirror" {
			return fmt.Errorf("imagePullSecrets %q, want regcred,mirror", got)
		}
		return nil
	})
}
