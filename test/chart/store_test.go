package chart

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/store"
	"github.com/aether-dev/aether-devhot/pkg/store/kubeaccess"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// env returns c's environment variables with plain values.
func env(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// TestTemplateStoreDefaults checks the artifact store of the default
// install against what cmd/store reads and what `kubectl devhot push`
// addresses (cmd/kubectl-devhot checks its defaults against the Service).
func TestTemplateStoreDefaults(t *testing.T) {
	objs := objects(t, mustRender(t, release{"aether-devhot", "aether-system"}))
	d := storeDeployment(t, objs)
	if d.Namespace != "aether-system" || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate" {
		t.Errorf("store Deployment in %q, %d replicas, strategy %q; want aether-system, 1, Recreate", d.Namespace, *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != "aether-devhot-store" || pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Errorf("the store's pod runs as %q, token mounted %v: it needs its own ServiceAccount's token to review tokens",
			pod.ServiceAccountName, pod.AutomountServiceAccountToken)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	checkRestricted(t, pod, c)
	if c.Image != "aether-devhot:dev" || !slices.Equal(c.Command, []string{"/store"}) {
		t.Errorf("image %q command %v, want the manager's image and /store", c.Image, c.Command)
	}
	addr, _ := arg(c.Args, "addr")
	dir, _ := arg(c.Args, "dir")
	audience, _ := arg(c.Args, "audience")
	if addr != ":8080" || dir != "/data" || audience != "http://aether-devhot-store.aether-system.svc" || len(c.Args) != 3 {
		t.Errorf("args = %v, want --addr=:8080 --dir=/data --audience=http://aether-devhot-store.aether-system.svc", c.Args)
	}
	// The fetchers' store tokens are minted for the webhook's --store-url;
	// the store reviews them for its --audience.
	if storeURL, _ := arg(deployment(t, objs).Spec.Template.Spec.Containers[0].Args, "store-url"); storeURL != audience {
		t.Errorf("webhook --store-url=%s, store --audience=%s: fetchers' tokens would be refused", storeURL, audience)
	}
	if got, want := env(c), map[string]string{"AETHER_STORE_MAX_BLOB_BYTES": "536870912", "AETHER_STORE_MAX_TOTAL_BYTES": "2147483648",
		"AETHER_STORE_NAMESPACE_QUOTA_BYTES": "1073741824", "AETHER_STORE_MAX_UPLOADS": "4", "AETHER_STORE_MAX_NAMESPACE_UPLOADS": "2",
		"AETHER_STORE_UPLOAD_TIMEOUT": "2m"}; !maps.Equal(got, want) {
		t.Errorf("env = %v, want %v", got, want)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http" && p.ContainerPort == 8080 }) {
		t.Errorf("ports = %v, want http on 8080, the --addr port", c.Ports)
	}
	for _, p := range []struct {
		probe *corev1.Probe
		path  string
	}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("probe %+v, want GET %s on port http", p.probe, p.path)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources = %v, want requests and a memory limit", c.Resources)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].Name != "data" || pod.Volumes[0].EmptyDir == nil ||
		pod.Volumes[0].EmptyDir.SizeLimit == nil || pod.Volumes[0].EmptyDir.SizeLimit.String() != "5Gi" {
		t.Errorf("volumes = %+v, want data, an emptyDir of 5Gi", pod.Volumes)
	}
	// The blobs kept plus every upload in flight fit the emptyDir.
	lim := store.DefaultLimits
	if room := pod.Volumes[0].EmptyDir.SizeLimit.Value(); lim.MaxTotalBytes+int64(lim.MaxUploads)*lim.MaxBlobBytes > room {
		t.Errorf("the emptyDir's %d bytes cannot hold %d of blobs and %d uploads of %d bytes", room, lim.MaxTotalBytes, lim.MaxUploads, lim.MaxBlobBytes)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].Name != "data" || c.VolumeMounts[0].MountPath != dir || c.VolumeMounts[0].ReadOnly {
		t.Errorf("volume mounts = %+v, want data writable at --dir %s", c.VolumeMounts, dir)
	}

	svc := into[corev1.Service](t, named(t, objs, "Service", "aether-devhot-store"))
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http" || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("store Service ports = %+v, want http 80 → http", svc.Spec.Ports)
	}

	// Each selector picks its own component's pods only: admission
	// requests must never reach the store, nor uploads the webhook.
	storePod := labels.Set(d.Spec.Template.Labels)
	webhookPod := labels.Set(deployment(t, objs).Spec.Template.Labels)
	pdb := into[policyv1.PodDisruptionBudget](t, only(t, objs, "PodDisruptionBudget"))
	webhookSvc := into[corev1.Service](t, named(t, objs, "Service", "aether-devhot"))
	for _, s := range []struct {
		what     string
		selector map[string]string
		store    bool
	}{
		{"store Service", svc.Spec.Selector, true},
		{"store Deployment", d.Spec.Selector.MatchLabels, true},
		{"webhook Service", webhookSvc.Spec.Selector, false},
		{"webhook Deployment", deployment(t, objs).Spec.Selector.MatchLabels, false},
		{"PodDisruptionBudget", pdb.Spec.Selector.MatchLabels, false},
	} {
		sel := labels.SelectorFromSet(s.selector)
		if sel.Matches(storePod) != s.store || sel.Matches(webhookPod) == s.store {
			t.Errorf("%s selects %v: store pod %v, webhook pod %v; want only the %s", s.what, s.selector,
				sel.Matches(storePod), sel.Matches(webhookPod), map[bool]string{true: "store", false: "webhook"}[s.store])
		}
	}

	cr := into[rbacv1.ClusterRole](t, named(t, objs, "ClusterRole", "aether-devhot-store"))
	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"list", "watch"}},
	}
	if !equality.Semantic.DeepEqual(cr.Rules, wantRules) {
		t.Errorf("store ClusterRole rules %+v, want %+v", cr.Rules, wantRules)
	}
	crb := into[rbacv1.ClusterRoleBinding](t, named(t, objs, "ClusterRoleBinding", "aether-devhot-store"))
	if crb.RoleRef.Name != cr.Name || len(crb.Subjects) != 1 || crb.Subjects[0].Name != pod.ServiceAccountName || crb.Subjects[0].Namespace != "aether-system" {
		t.Errorf("store ClusterRoleBinding %+v, want %s bound to the store's ServiceAccount", crb, cr.Name)
	}

	// The NetworkPolicy selects the store's pod only and lets in TCP to
	// its http port, from any pod (fetchers live everywhere) by default.
	np := into[networkingv1.NetworkPolicy](t, named(t, objs, "NetworkPolicy", "aether-devhot-store"))
	npSel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	if !npSel.Matches(storePod) || npSel.Matches(webhookPod) || !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy selects %v (store pod %v, webhook pod %v), types %v", np.Spec.PodSelector, npSel.Matches(storePod), npSel.Matches(webhookPod), np.Spec.PolicyTypes)
	}
	if in := np.Spec.Ingress; len(in) != 1 || len(in[0].Ports) != 1 || in[0].Ports[0].Port.String() != "http" || *in[0].Ports[0].Protocol != corev1.ProtocolTCP ||
		len(in[0].From) != 1 || in[0].From[0].NamespaceSelector == nil || len(in[0].From[0].NamespaceSelector.MatchLabels) != 0 {
		t.Errorf("NetworkPolicy ingress %+v, want TCP to port http from every namespace's pods", in)
	}

	role := into[rbacv1.Role](t, named(t, objs, "Role", "aether-devhot-pusher"))
	want := []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"services/proxy"},
		ResourceNames: []string{"aether-devhot-store", "aether-devhot-store:http"}, Verbs: []string{"get", "update"},
	}}
	if role.Namespace != "aether-system" || !equality.Semantic.DeepEqual(role.Rules, want) {
		t.Errorf("pusher Role in %q with rules %+v, want aether-system and %+v", role.Namespace, role.Rules, want)
	}
}

// TestNotesNamePush renders NOTES.txt (helm install --dry-run against the
// local API server): with the store, how to push and whom to bind, with
// the store flags only where the CLI's defaults do not find it.
func TestNotesNamePush(t *testing.T) {
	for _, tc := range []struct {
		name     string
		r        release
		sets     []string
		want     []string
		dontWant []string
	}{
		{"defaults", release{"aether-devhot", "aether-system"}, nil,
			[]string{"devhot push deployment/<name> ./app\n", "--role aether-devhot-pusher"}, []string{"--store-namespace"}},
		{"other release and namespace", release{"dev", "tools"}, nil,
			[]string{"devhot push deployment/<name> ./app --store-namespace tools --store-service dev-aether-devhot-store\n", "-n tools create rolebinding"}, nil},
		{"store url", release{"aether-devhot", "aether-system"}, []string{"store.url=http://10.96.0.80"},
			[]string{"devhot push deployment/<name> ./app --artifact-base-url http://10.96.0.80\n"}, nil},
		{"no pusher role", release{"aether-devhot", "aether-system"}, []string{"store.pusherRole.create=false"},
			[]string{"devhot push"}, []string{"rolebinding"}},
		{"no store", release{"aether-devhot", "aether-system"}, []string{"store.enabled=false"},
			[]string{"serve it over http(s)"}, []string{"devhot push", "rolebinding"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"install", tc.r.name, chartDir, "--dry-run=client", "--kubeconfig", cp.Kubeconfig, "--namespace", tc.r.namespace}
			for _, s := range tc.sets {
				args = append(args, "--set", s)
			}
			out, err := helm(args...)
			if err != nil {
				t.Fatal(err)
			}
			_, notes, ok := strings.Cut(out, "NOTES:\n")
			if !ok {
				t.Fatalf("no NOTES in:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES lack %q:\n%s", w, notes)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(notes, w) {
					t.Errorf("NOTES have %q:\n%s", w, notes)
				}
			}
		})
	}
}

// TestPusherRole binds the pusher Role to a user as the README says and
// asks the API server what that user may do, with `kubectl auth can-i` and
// with real HEAD and PUT requests through the service proxy: the API
// server authorizes them and then, with no pod behind the Service here,
// answers 503, where an unbound user gets 403.
func TestPusherRole(t *testing.T) {
	r := release{"push", "rbac-push"}
	install(t, r)
	svc := r.fullname() + "-store"
	kubectl(t, "", "-n", r.namespace, "create", "rolebinding", "alice-devhot-pusher", "--role", r.fullname()+"-pusher", "--user", "alice")

	proxy := func(verb, name, ns string) access {
		return access{verb: verb, resource: "services", name: name, subresource: "proxy", namespace: ns}
	}
	for _, c := range []struct {
		user string
		access
		want bool
	}{
		{"alice", proxy("get", svc+":http", r.namespace), true},
		{"alice", proxy("update", svc+":http", r.namespace), true},
		{"alice", proxy("get", svc, r.namespace), true},
		{"alice", proxy("update", svc, r.namespace), true},
		{"alice", proxy("create", svc+":http", r.namespace), false},
		{"alice", proxy("delete", svc+":http", r.namespace), false},
		{"alice", proxy("get", r.fullname()+":https", r.namespace), false},
		{"alice", proxy("update", svc+":http", "default"), false},
		{"alice", access{verb: "get", resource: "services", name: svc, namespace: r.namespace}, false},
		{"bob", proxy("get", svc+":http", r.namespace), false},
	} {
		if got := canI(t, c.user, c.access); got != c.want {
			t.Errorf("%s can %s: %v, want %v", c.user, c.access, got, c.want)
		}
	}

	// The URL `kubectl devhot push` uses (cmd/kubectl-devhot/push.go).
	url := strings.TrimSuffix(cp.Config.Host, "/") + "/api/v1/namespaces/" + r.namespace + "/services/" + svc + ":http/proxy" +
		store.BlobRef{Namespace: "team-a", Deployment: "web", Hex: strings.Repeat("0", 64)}.Path()
	for _, c := range []struct {
		user, method string
		want         int
	}{
		{"alice", http.MethodHead, http.StatusServiceUnavailable},
		{"alice", http.MethodPut, http.StatusServiceUnavailable},
		{"bob", http.MethodHead, http.StatusForbidden},
		{"bob", http.MethodPut, http.StatusForbidden},
	} {
		cfg := rest.CopyConfig(cp.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: c.user}
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(c.method, url, strings.NewReader("app"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s as %s: %s, want %d", c.method, url, c.user, resp.Status, c.want)
		}
	}
}

// TestStoreRunsUnderItsServiceAccount installs the chart, checks with
// `kubectl auth can-i` that the store's ServiceAccount may do exactly what
// package kubeaccess calls, and runs the store's access control under it
// against the API server: real TokenReviews, SubjectAccessReviews and the
// watch of labelled Deployments.
func TestStoreRunsUnderItsServiceAccount(t *testing.T) {
	r := release{"st", "rbac-store"}
	install(t, r)
	sa := r.fullname() + "-store"
	user := "system:serviceaccount:" + r.namespace + ":" + sa
	for _, c := range []accessCheck{
		{access{verb: "create", resource: "tokenreviews.authentication.k8s.io"}, true},
		{access{verb: "create", resource: "subjectaccessreviews.authorization.k8s.io"}, true},
		{access{verb: "list", resource: "deployments.apps"}, true},
		{access{verb: "watch", resource: "deployments.apps"}, true},
		{access{verb: "patch", resource: "deployments.apps", namespace: "default"}, false},
		{access{verb: "get", resource: "secrets", namespace: r.namespace}, false},
		{access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "default"}, false},
		{access{verb: "list", resource: "pods"}, false},
	} {
		if got := canI(t, user, c.access); got != c.want {
			t.Errorf("%s can %s: %v, want %v", sa, c.access, got, c.want)
		}
	}

	kc := filepath.Join(t.TempDir(), "store.kubeconfig")
	wait.For(t, "a token for "+sa, 10*time.Second, func() error { return cp.ServiceAccountKubeconfig(r.namespace, sa, kc) })
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	const audience = "http://st-aether-devhot-store.rbac-store.svc"
	acc, err := kubeaccess.New(cfg, audience)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = acc.Run(ctx) }()
	wait.For(t, "the store's watch of Deployments", 15*time.Second, func() error {
		if !acc.Ready() {
			return errors.New("not synced")
		}
		return nil
	})

	// A reader that may get Deployment web, one that may not.
	const ns = "rbac-store-app"
	namespace(t, ns, nil)
	kubectl(t, "", "-n", ns, "create", "serviceaccount", "reader")
	kubectl(t, "", "-n", ns, "create", "serviceaccount", "stranger")
	kubectl(t, "", "-n", ns, "create", "role", "get-web", "--verb=get", "--resource=deployments.apps", "--resource-name=web")
	kubectl(t, "", "-n", ns, "create", "rolebinding", "get-web", "--role=get-web", "--serviceaccount="+ns+":reader")
	token := func(sa string, aud ...string) string {
		t.Helper()
		tr, err := cp.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: aud}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	web := store.BlobRef{Namespace: ns, Deployment: "web", Hex: strings.Repeat("a", 64)}
	for _, c := range []struct {
		name, token string
		ref         store.BlobRef
		want        int
	}{
		{"reader", token("reader", audience), web, 0},
		{"reader, another Deployment", token("reader", audience), store.BlobRef{Namespace: ns, Deployment: "api", Hex: web.Hex}, 403},
		{"stranger", token("stranger", audience), web, 403},
		{"reader's API server token", token("reader"), web, 401},
		{"reader's token for another store", token("reader", "http://other-store"), web, 401},
	} {
		err := acc.AuthorizeRead(ctx, c.token, c.ref)
		var den *store.Denied
		if c.want == 0 && err != nil || c.want != 0 && (!errors.As(err, &den) || den.Status != c.want) {
			t.Errorf("%s: %v, want %d", c.name, err, c.want)
		}
	}

	kubectl(t, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %s
  labels: {%s: "true"}
  annotations: {%s: "sha256:%s"}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: node:20}]}
`, ns, annotations.DevHot, annotations.UploadDigest, web.Hex), "apply", "-f", "-")
	if err := acc.AuthorizeUpload(ctx, web); err != nil {
		t.Errorf("upload of the digest the Deployment asks for: %v", err)
	}
	if !acc.Pinned(ns, web.Hex) {
		t.Error("the digest the Deployment asks for is not pinned")
	}
}
