package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/names"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

const digest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

func TestApplyInjectsLabelledDeployment(t *testing.T) {
	ns := namespace(t, nil)
	_, stderr := kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
	if !strings.Contains(stderr, "Warning: aether-devhot: fetcher injected as a native sidecar") {
		t.Errorf("kubectl did not show the webhook's warnings; stderr:\n%s", stderr)
	}
	d := getDeployment(t, ns, "hello")
	spec := d.Spec.Template.Spec
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != sidecar.ContainerName {
		t.Fatalf("initContainers = %v, want only %s", containerNames(spec.InitContainers), sidecar.ContainerName)
	}
	if want := []string{"node", "--watch", "/app/.aether/boot.cjs"}; !slices.Equal(spec.Containers[0].Command, want) {
		t.Errorf("app command = %q, want %q", spec.Containers[0].Command, want)
	}
	if spec.ServiceAccountName != "hello-devhot" {
		t.Errorf("serviceAccountName = %q, want hello-devhot", spec.ServiceAccountName)
	}
	if _, ok := d.Annotations[annotations.Injected]; !ok {
		t.Errorf("no %s annotation", annotations.Injected)
	}
}

func TestUnlabelledDeploymentIsUntouched(t *testing.T) {
	ns := namespace(t, nil)
	kubectl(t, sample(t, `    aether.dev/dev-hot: "true"`, ""), "-n", ns, "apply", "-f", "-")
	d := getDeployment(t, ns, "hello")
	if got := containerNames(d.Spec.Template.Spec.InitContainers); !slices.Equal(got, []string{"fetch"}) {
		t.Errorf("initContainers = %v, want [fetch]", got)
	}
	if len(d.Annotations) > 1 { // only kubectl's last-applied-configuration
		t.Errorf("annotations = %v", d.Annotations)
	}
}

// A second identical apply must not roll the Deployment out, although the
// apply patch puts back the original initContainer and command.
func TestReapplyDoesNotRollOut(t *testing.T) {
	for _, mode := range []struct{ name, flag string }{
		{"client-side", "--server-side=false"},
		{"server-side", "--server-side"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ns := namespace(t, nil)
			kubectl(t, sample(t), "-n", ns, "apply", mode.flag, "-f", "-")
			first := getDeployment(t, ns, "hello")
			kubectl(t, sample(t), "-n", ns, "apply", mode.flag, "-f", "-")
			second := getDeployment(t, ns, "hello")
			if first.Generation != second.Generation {
				t.Errorf("generation %d -> %d: the second apply rolled out", first.Generation, second.Generation)
			}
			if a, b := mustJSON(t, first.Spec.Template), mustJSON(t, second.Spec.Template); a != b {
				t.Errorf("template changed:\n%s\n%s", a, b)
			}
			if first.ResourceVersion != second.ResourceVersion && mode.name == "client-side" {
				t.Logf("resourceVersion %s -> %s (a no-op apply may still write)", first.ResourceVersion, second.ResourceVersion)
			}
		})
	}
}

func TestAnnotateDigestKeepsTemplate(t *testing.T) {
	ns := namespace(t, nil)
	kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
	before := getDeployment(t, ns, "hello")
	noops := mutations(t, "noop")
	kubectl(t, "", "-n", ns, "annotate", "deploy", "hello",
		annotations.Digest+"="+digest, annotations.ArtifactURL+"=http://127.0.0.1:1/hello.tar.gz")
	after := getDeployment(t, ns, "hello")
	// The stored object re-admitted with only a new annotation: rule 2 says
	// the webhook's patch is empty.
	if got := mutations(t, "noop"); got != noops+1 {
		t.Errorf("aether_devhot_mutations_total{result=noop} went %v -> %v, want +1", noops, got)
	}
	if after.Annotations[annotations.Digest] != digest {
		t.Fatalf("digest annotation = %q", after.Annotations[annotations.Digest])
	}
	if a, b := mustJSON(t, before.Spec.Template), mustJSON(t, after.Spec.Template); a != b {
		t.Errorf("annotating the digest changed the pod template (a rollout):\n%s\n%s", a, b)
	}
}

func TestMalformedDigestIsDenied(t *testing.T) {
	ns := namespace(t, nil)
	kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
	_, _, err := cp.Run("", "-n", ns, "annotate", "deploy", "hello",
		annotations.Digest+"=md5:abc", annotations.ArtifactURL+"=http://127.0.0.1:1/a.tgz")
	if err == nil {
		t.Fatal("a malformed digest was admitted")
	}
	if !strings.Contains(err.Error(), "metadata.annotations[aether.dev/digest]") {
		t.Errorf("the denial does not name the annotation: %v", err)
	}
}

func TestDryRunServerShowsMutationAndCreatesNothing(t *testing.T) {
	ns := namespace(t, nil)
	out, _ := kubectl(t, sample(t), "-n", ns, "apply", "--dry-run=server", "-o", "json", "-f", "-")
	if !strings.Contains(out, sidecar.ContainerName) {
		t.Errorf("dry-run output has no %s:\n%s", sidecar.ContainerName, out)
	}
	_, err := cp.Clientset.AppsV1().Deployments(ns).Get(context.Background(), "hello", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("dry run created the Deployment: %v", err)
	}
}

func TestLabelRemovalReverts(t *testing.T) {
	ns := namespace(t, nil)
	kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
	waitRBAC(t, ns, "hello", "hello-devhot")
	kubectl(t, "", "-n", ns, "label", "deploy", "hello", annotations.DevHot+"-")

	d := getDeployment(t, ns, "hello")
	spec := d.Spec.Template.Spec
	if got := containerNames(spec.InitContainers); !slices.Equal(got, []string{"fetch"}) {
		t.Errorf("initContainers = %v, want [fetch]", got)
	}
	if want := []string{"node", "server.js"}; !slices.Equal(spec.Containers[0].Command, want) {
		t.Errorf("command = %q, want %q", spec.Containers[0].Command, want)
	}
	if spec.ServiceAccountName != "" || len(spec.Volumes) != 1 {
		t.Errorf("serviceAccountName %q, volumes %d: not reverted", spec.ServiceAccountName, len(spec.Volumes))
	}
	for _, k := range []string{annotations.Injected, annotations.DevHot} {
		if _, ok := d.Annotations[k]; ok {
			t.Errorf("annotation %s left behind", k)
		}
	}
	wait.For(t, "RBAC removed", 10*time.Second, func() error {
		_, err := cp.Clientset.RbacV1().Roles(ns).Get(context.Background(), names.Role("hello"), metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("role still there (%v)", err)
		}
		_, err = cp.Clientset.CoreV1().ServiceAccounts(ns).Get(context.Background(), "hello-devhot", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("service account still there (%v)", err)
		}
		return nil
	})
}

// A pod built from the mutated template passes Pod Security "restricted";
// a privileged pod in the same namespace does not, so the check is live.
func TestMutatedPodIsAdmittedUnderRestricted(t *testing.T) {
	ns := namespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
	d := getDeployment(t, ns, "hello")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-pod", Namespace: ns, Labels: d.Spec.Template.Labels},
		Spec:       d.Spec.Template.Spec,
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if _, err := cp.Clientset.CoreV1().Pods(ns).Create(context.Background(), pod, dry); err != nil {
		t.Fatalf("mutated pod refused: %v", err)
	}
	bad := pod.DeepCopy()
	bad.Spec.Containers[0].SecurityContext.Privileged = new(true)
	if _, err := cp.Clientset.CoreV1().Pods(ns).Create(context.Background(), bad, dry); err == nil {
		t.Fatal("a privileged pod was admitted: Pod Security is not enforcing, so this test proves nothing")
	}
}

func TestReconcilerGrantsOnlyOwnDeployment(t *testing.T) {
	ns := namespace(t, nil)
	kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
	kubectl(t, sample(t, "name: hello\n", "name: other\n", `    aether.dev/dev-hot: "true"`, ""), "-n", ns, "apply", "-f", "-")
	waitRBAC(t, ns, "hello", "hello-devhot")

	as := "--as=system:serviceaccount:" + ns + ":hello-devhot"
	for _, c := range []struct {
		verb, resource string
		want           bool
	}{
		{"get", "deployments.apps/hello", true},
		{"list", "deployments.apps/hello", true},
		{"watch", "deployments.apps/hello", true},
		{"create", "events", true},
		{"get", "deployments.apps/other", false},
		{"list", "deployments.apps", false},
		{"get", "secrets", false},
		{"patch", "deployments.apps/hello", false},
		{"update", "deployments.apps/hello", false},
		{"delete", "pods", false},
	} {
		out, _, _ := cp.Run("", "-n", ns, "auth", "can-i", c.verb, c.resource, as)
		if got := strings.TrimSpace(out) == "yes"; got != c.want {
			t.Errorf("can-i %s %s = %q, want %v", c.verb, c.resource, strings.TrimSpace(out), c.want)
		}
	}

	// The real requests the fetcher makes, with a token minted for the SA.
	tr, err := cp.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), "hello-devhot",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(cp.Config)
	cfg.BearerToken = tr.Status.Token
	sa := kubernetes.NewForConfigOrDie(cfg)
	deps := sa.AppsV1().Deployments(ns)
	own := metav1.ListOptions{FieldSelector: "metadata.name=hello"}
	if _, err := deps.List(context.Background(), own); err != nil {
		t.Errorf("list own Deployment by field selector: %v", err)
	}
	w, err := deps.Watch(context.Background(), own)
	if err != nil {
		t.Errorf("watch own Deployment by field selector: %v", err)
	} else {
		w.Stop()
	}
	if _, err := deps.List(context.Background(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list all Deployments: err = %v, want Forbidden", err)
	}
	if _, err := deps.Get(context.Background(), "other", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get another Deployment: err = %v, want Forbidden", err)
	}

	wait.For(t, "RBACCreated event", 10*time.Second, func() error {
		out, _, err := cp.Run("", "-n", ns, "get", "events", "--field-selector", "involvedObject.name=hello", "-o", "json")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "RBACCreated") {
			return fmt.Errorf("no RBACCreated event yet")
		}
		return nil
	})
}

func TestCustomServiceAccountIsKeptAndBound(t *testing.T) {
	ns := namespace(t, nil)
	kubectl(t, sample(t, "      securityContext:\n        runAsNonRoot", "      serviceAccountName: hello-runtime\n      securityContext:\n        runAsNonRoot"),
		"-n", ns, "apply", "-f", "-")
	d := getDeployment(t, ns, "hello")
	if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "hello-runtime" {
		t.Fatalf("serviceAccountName = %q, want hello-runtime kept", sa)
	}
	waitRBAC(t, ns, "hello", "hello-runtime")
	if _, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Get(context.Background(), "hello-devhot", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("hello-devhot was created for a Deployment with its own SA: %v", err)
	}
}

// waitRBAC waits for the Role and a RoleBinding of it to subject sa.
func waitRBAC(t *testing.T, ns, deployment, sa string) {
	t.Helper()
	wait.For(t, "reconciler RBAC", 15*time.Second, func() error {
		ctx := context.Background()
		if _, err := cp.Clientset.RbacV1().Roles(ns).Get(ctx, names.Role(deployment), metav1.GetOptions{}); err != nil {
			return err
		}
		rb, err := cp.Clientset.RbacV1().RoleBindings(ns).Get(ctx, names.Role(deployment), metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}
		if b, _ := json.Marshal(rb.Subjects); string(b) != mustJSON(t, want) {
			return fmt.Errorf("subjects = %s", b)
		}
		if sa == deployment+"-devhot" {
			_, err = cp.Clientset.CoreV1().ServiceAccounts(ns).Get(ctx, sa, metav1.GetOptions{})
		}
		return err
	})
}

func containerNames(cs []corev1.Container) []string {
	n := make([]string, 0, len(cs))
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return n
}

// mutations reads aether_devhot_mutations_total{result} from the
// in-process webhook's registry.
func mutations(t *testing.T, result string) float64 {
	t.Helper()
	n, found := counter(t, "aether_devhot_mutations_total", "result", result)
	if !found {
		t.Fatalf("no aether_devhot_mutations_total{result=%q}", result)
	}
	return n
}

// counter sums the series of the counter name whose label has value, from
// the in-process manager's registry, and says whether there was one.
func counter(t *testing.T, name, label, value string) (float64, bool) {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					n += m.GetCounter().GetValue()
					found = true
				}
			}
		}
	}
	return n, found
}
