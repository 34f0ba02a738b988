package chart

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
)

// toggles are the value sets every lint and template run covers: the
// defaults and each switch of values.yaml.
var toggles = map[string][]string{
	"defaults":              nil,
	"without cert-manager":  {"certManager.enabled=false"},
	"existing secret":       {"certManager.enabled=false", "certs.existingSecret=my-tls", "certs.caBundle=Q0EK"},
	"service monitor":       {"serviceMonitor.enabled=true"},
	"pod monitor":           {"podMonitor.enabled=true"},
	"no metrics":            {"metrics.enabled=false"},
	"fail closed":           {"failurePolicy=Fail"},
	"legacy sidecars":       {"sidecarMode=legacy"},
	"debug logs":            {"logLevel=debug"},
	"own fetcher image":     {"fetcherImage=registry.example.com/fetcher:1.2.3", "image.tag=1.2.3"},
	"one replica, no pdb":   {"replicaCount=1", "podDisruptionBudget.enabled=false"},
	"namespace":             {"createNamespace=true"},
	"excluded namespaces":   {"webhook.excludeNamespaces={team-a,team-b}"},
	"no patch fence":        {"patchFence.enabled=false"},
	"fleet metrics":         {"fleetMetrics.enabled=true"},
	"no store":              {"store.enabled=false"},
	"store on a pvc":        {"store.persistence.enabled=true", "store.persistence.size=10Gi", "store.persistence.storageClass=fast"},
	"own store image, caps": {"store.image=registry.example.com/store:1.2.3", "store.maxBlobBytes=1048576", "store.maxTotalBytes=8388608", "store.namespaceQuotaBytes=4194304"},
	"no pusher role":        {"store.pusherRole.create=false"},
	"store url, ClusterIP":  {"store.url=http://10.0.0.80", "store.service.clusterIP=10.0.0.80"},
	"store limits":          {"store.namespaceQuotaBytes=2097152", "store.maxUploads=8", "store.maxNamespaceUploads=3", "store.uploadTimeout=30s", "store.maxBlobBytes=1048576", "store.maxTotalBytes=8388608"},
	"no network policy":     {"store.networkPolicy.enabled=false"},
	"narrow network policy": {"store.networkPolicy.namespaceSelector.matchLabels.dev-hot=on", "store.networkPolicy.apiServerCIDRs={10.0.0.10/32,10.0.0.11/32}"},
	"pull secrets":          {"imageLookup.pullSecrets={regcred,mirror-cred}", "imageLookup.timeout=3s"},
	"no image lookup":       {"imageLookup.enabled=false"},
	"everything":            {"serviceMonitor.enabled=true", "podMonitor.enabled=true", "createNamespace=true", "failurePolicy=Fail", "sidecarMode=native", "logLevel=debug", "fleetMetrics.enabled=true", "store.persistence.enabled=true"},
}

func TestHelmLint(t *testing.T) {
	for name, sets := range toggles {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir, "--namespace", "aether-system"}
			for _, s := range sets {
				args = append(args, "--set", s)
			}
			out, err := helm(args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") || strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
				t.Errorf("helm lint is not clean:\n%s", out)
			}
		})
	}
}

func TestTemplateRendersEveryToggle(t *testing.T) {
	r := release{"aether-devhot", "aether-system"}
	for name, sets := range toggles {
		t.Run(name, func(t *testing.T) {
			objs := objects(t, mustRender(t, r, sets...))
			if len(objs) < 9 {
				t.Fatalf("only %d objects rendered", len(objs))
			}
			for _, o := range objs {
				if o.GetName() == "" || o.GetAPIVersion() == "" {
					t.Errorf("object without name or apiVersion: %v", o.Object)
				}
			}
		})
	}
}

// arg returns the value of --name in args, and whether it is there.
func arg(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "", true
		}
	}
	return "", false
}

func TestTemplateDefaults(t *testing.T) {
	r := release{"aether-devhot", "aether-system"}
	objs := objects(t, mustRender(t, r))
	want := map[string]int{
		"ServiceAccount": 2, "ClusterRole": 2, "ClusterRoleBinding": 2, "Role": 2, "RoleBinding": 1,
		"Service": 2, "Deployment": 2, "PodDisruptionBudget": 1, "MutatingWebhookConfiguration": 1, "NetworkPolicy": 1,
		"Issuer": 2, "Certificate": 2, "ValidatingAdmissionPolicy": 1, "ValidatingAdmissionPolicyBinding": 1,
	}
	if got := kinds(objs); !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("kinds = %v, want %v", got, want)
	}

	d := deployment(t, objs)
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", *d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	for flag, want := range map[string]string{
		"webhook-port":              "9443",
		"cert-dir":                  "/tmp/k8s-webhook-server/serving-certs",
		"metrics-bind-address":      ":8080",
		"health-probe-bind-address": ":8081",
		"leader-elect":              "",
		"fetcher-image":             "aether-devhot:dev",
		"sidecar-mode":              "auto",
		"zap-log-level":             "info",
		"store-url":                 "http://aether-devhot-store.aether-system.svc",
	} {
		if got, ok := arg(c.Args, flag); !ok || got != want {
			t.Errorf("--%s = %q (present %v), want %q", flag, got, ok, want)
		}
	}
	if _, ok := arg(c.Args, "ingest-fetcher-logs"); ok {
		t.Error("--ingest-fetcher-logs by default: fleet metrics are opt-in")
	}
	// A deleted replica serves on until the API server stops sending it
	// requests; the kubelet's grace period (30 s) outlasts the sleep.
	if l := c.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Sleep == nil || l.PreStop.Sleep.Seconds != 5 {
		t.Errorf("lifecycle = %+v, want a preStop sleep of 5 s", l)
	}
	if c.Image != "aether-devhot:dev" {
		t.Errorf("image = %q", c.Image)
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "health" {
			t.Fatalf("probe %+v: want an HTTP probe on the health port", p)
		}
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probe paths %s, %s", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "health" && p.ContainerPort == 8081 }) {
		t.Errorf("no health port 8081: %v", c.Ports)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources = %v, want requests and a memory limit", c.Resources)
	}
	checkRestricted(t, pod, c)
	aa := pod.Affinity
	if aa == nil || aa.PodAntiAffinity == nil || len(aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Errorf("no pod anti-affinity: %+v", aa)
	}
	if got := pod.Volumes[0].Secret.SecretName; got != "aether-devhot-tls" {
		t.Errorf("cert volume secret = %q", got)
	}
	if pod.ServiceAccountName != "aether-devhot" {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}

	pdb := into[policyv1.PodDisruptionBudget](t, only(t, objs, "PodDisruptionBudget"))
	if v := pdb.Spec.MaxUnavailable; v == nil || v.String() != "1" {
		t.Errorf("pdb maxUnavailable = %v, want 1", v)
	}
	if !equality.Semantic.DeepEqual(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("pdb selects %v, the Deployment's pods are %v", pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels)
	}

	mwc := into[admissionregistrationv1.MutatingWebhookConfiguration](t, only(t, objs, "MutatingWebhookConfiguration"))
	if got := mwc.Annotations["cert-manager.io/inject-ca-from"]; got != "aether-system/aether-devhot-serving" {
		t.Errorf("inject-ca-from = %q", got)
	}
	w := mwc.Webhooks[0]
	if *w.FailurePolicy != admissionregistrationv1.Ignore {
		t.Errorf("failurePolicy = %s, want Ignore", *w.FailurePolicy)
	}
	if len(w.ClientConfig.CABundle) != 0 {
		t.Error("caBundle rendered although cainjector fills it")
	}
	ns := w.NamespaceSelector.MatchExpressions
	if len(ns) != 1 || ns[0].Key != "kubernetes.io/metadata.name" || ns[0].Operator != "NotIn" ||
		!slices.Equal(ns[0].Values, []string{"kube-system", "aether-system"}) {
		t.Errorf("namespaceSelector = %+v, want kubernetes.io/metadata.name NotIn [kube-system aether-system]", ns)
	}

	// The serving Certificate covers the name the API server dials, and is
	// signed by the CA Issuer, which the self-signed Issuer's CA backs.
	var serving, ca *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Certificate" && o.GetName() == "aether-devhot-serving" {
			serving = o
		}
		if o.GetKind() == "Certificate" && o.GetName() == "aether-devhot-ca" {
			ca = o
		}
	}
	if serving == nil || ca == nil {
		t.Fatal("no serving or CA Certificate")
	}
	dns, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	if !slices.Contains(dns, "aether-devhot.aether-system.svc") {
		t.Errorf("serving dnsNames = %v", dns)
	}
	if s, _, _ := unstructured.NestedString(serving.Object, "spec", "secretName"); s != "aether-devhot-tls" {
		t.Errorf("serving secretName = %q", s)
	}
	if s, _, _ := unstructured.NestedString(serving.Object, "spec", "issuerRef", "name"); s != "aether-devhot-ca" {
		t.Errorf("serving issuer = %q", s)
	}
	if isCA, _, _ := unstructured.NestedBool(ca.Object, "spec", "isCA"); !isCA {
		t.Error("CA Certificate has isCA false")
	}
	if s, _, _ := unstructured.NestedString(ca.Object, "spec", "issuerRef", "name"); s != "aether-devhot-selfsigned" {
		t.Errorf("CA issuer = %q", s)
	}
}

// checkRestricted fails unless pod and its container c meet Pod Security
// "restricted" with a read-only root; TestApplyEveryObject has the API
// server check it too.
func checkRestricted(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
		sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("%s: security context is not restricted: pod %+v, container %+v", c.Name, pod.SecurityContext, sc)
	}
}

func TestTemplateToggles(t *testing.T) {
	r := release{"aether-devhot", "aether-system"}
	managerArg := func(t *testing.T, objs []*unstructured.Unstructured, flag string) string {
		v, _ := arg(deployment(t, objs).Spec.Template.Spec.Containers[0].Args, flag)
		return v
	}
	webhook := func(t *testing.T, objs []*unstructured.Unstructured) *admissionregistrationv1.MutatingWebhookConfiguration {
		return into[admissionregistrationv1.MutatingWebhookConfiguration](t, only(t, objs, "MutatingWebhookConfiguration"))
	}
	for _, tc := range []struct {
		name  string
		sets  []string
		check func(t *testing.T, objs []*unstructured.Unstructured)
	}{
		{"without cert-manager", toggles["without cert-manager"], func(t *testing.T, objs []*unstructured.Unstructured) {
			if n := kinds(objs); n["Certificate"]+n["Issuer"] != 0 {
				t.Errorf("cert-manager objects rendered: %v", n)
			}
			m := webhook(t, objs)
			if _, ok := m.Annotations["cert-manager.io/inject-ca-from"]; ok {
				t.Error("inject-ca-from without cert-manager")
			}
			if len(m.Webhooks[0].ClientConfig.CABundle) != 0 {
				t.Error("caBundle rendered though none was given")
			}
		}},
		{"existing secret", toggles["existing secret"], func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := deployment(t, objs).Spec.Template.Spec.Volumes[0].Secret.SecretName; got != "my-tls" {
				t.Errorf("cert volume secret = %q, want my-tls", got)
			}
			if got := string(webhook(t, objs).Webhooks[0].ClientConfig.CABundle); got != "CA\n" {
				t.Errorf("caBundle = %q, want the given one", got)
			}
		}},
		{"service monitor", toggles["service monitor"], func(t *testing.T, objs []*unstructured.Unstructured) {
			sm := only(t, objs, "ServiceMonitor")
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(eps) != 1 || eps[0].(map[string]any)["port"] != "metrics" {
				t.Errorf("endpoints = %v, want the metrics port", eps)
			}
			svc := into[corev1.Service](t, named(t, objs, "Service", "aether-devhot"))
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "metrics" }) {
				t.Errorf("Service has no metrics port: %v", svc.Spec.Ports)
			}
		}},
		{"pod monitor", toggles["pod monitor"], func(t *testing.T, objs []*unstructured.Unstructured) {
			pm := only(t, objs, "PodMonitor")
			eps, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
			if len(eps) != 1 || eps[0].(map[string]any)["port"] != "devhot-metrics" {
				t.Fatalf("podMetricsEndpoints = %v, want port devhot-metrics", eps)
			}
			if any, _, _ := unstructured.NestedBool(pm.Object, "spec", "namespaceSelector", "any"); !any {
				t.Error("PodMonitor does not look in every namespace")
			}
			relabel, _ := yaml.Marshal(eps[0].(map[string]any)["relabelings"])
			if !strings.Contains(string(relabel), "__meta_kubernetes_pod_annotation_aether_dev_dev_hot") {
				t.Errorf("no keep on the dev-hot annotation: %s", relabel)
			}
		}},
		{"no metrics", toggles["no metrics"], func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := managerArg(t, objs, "metrics-bind-address"); got != "0" {
				t.Errorf("--metrics-bind-address = %q, want 0", got)
			}
			svc := into[corev1.Service](t, named(t, objs, "Service", "aether-devhot"))
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 {
				t.Errorf("Service ports = %v, want only 443", svc.Spec.Ports)
			}
		}},
		{"fail closed", toggles["fail closed"], func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := *webhook(t, objs).Webhooks[0].FailurePolicy; got != admissionregistrationv1.Fail {
				t.Errorf("failurePolicy = %s", got)
			}
		}},
		{"legacy sidecars", toggles["legacy sidecars"], func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := managerArg(t, objs, "sidecar-mode"); got != "legacy" {
				t.Errorf("--sidecar-mode = %q", got)
			}
		}},
		{"debug logs", toggles["debug logs"], func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := managerArg(t, objs, "zap-log-level"); got != "debug" {
				t.Errorf("--zap-log-level = %q", got)
			}
		}},
		{"own fetcher image", toggles["own fetcher image"], func(t *testing.T, objs []*unstructured.Unstructured) {
			if got := managerArg(t, objs, "fetcher-image"); got != "registry.example.com/fetcher:1.2.3" {
				t.Errorf("--fetcher-image = %q", got)
			}
			if got := deployment(t, objs).Spec.Template.Spec.Containers[0].Image; got != "aether-devhot:1.2.3" {
				t.Errorf("image = %q", got)
			}
		}},
		{"one replica, no pdb", toggles["one replica, no pdb"], func(t *testing.T, objs []*unstructured.Unstructured) {
			if n := kinds(objs)["PodDisruptionBudget"]; n != 0 {
				t.Errorf("%d PodDisruptionBudgets", n)
			}
			if got := *deployment(t, objs).Spec.Replicas; got != 1 {
				t.Errorf("replicas = %d", got)
			}
		}},
		{"namespace", toggles["namespace"], func(t *testing.T, objs []*unstructured.Unstructured) {
			ns := only(t, objs, "Namespace")
			if ns.GetName() != "aether-system" || ns.GetLabels()["pod-security.kubernetes.io/enforce"] != "restricted" {
				t.Errorf("Namespace %s labels %v", ns.GetName(), ns.GetLabels())
			}
			if objs[0].GetKind() != "Namespace" {
				t.Errorf("first object is a %s: kubectl apply needs the Namespace first", objs[0].GetKind())
			}
		}},
		{"excluded namespaces", toggles["excluded namespaces"], func(t *testing.T, objs []*unstructured.Unstructured) {
			got := webhook(t, objs).Webhooks[0].NamespaceSelector.MatchExpressions[0].Values
			if want := []string{"kube-system", "aether-system", "team-a", "team-b"}; !slices.Equal(got, want) {
				t.Errorf("excluded namespaces = %v, want %v", got, want)
			}
			// The manager gives up on labelled Deployments there.
			if got := managerArg(t, objs, "exclude-namespaces"); got != "team-a,team-b" {
				t.Errorf("--exclude-namespaces = %q, want team-a,team-b", got)
			}
		}},
		{"no patch fence", toggles["no patch fence"], func(t *testing.T, objs []*unstructured.Unstructured) {
			for _, k := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
				if n := kinds(objs)[k]; n != 0 {
					t.Errorf("%d %s with patchFence.enabled=false", n, k)
				}
			}
		}},
		{"fleet metrics", toggles["fleet metrics"], func(t *testing.T, objs []*unstructured.Unstructured) {
			args := deployment(t, objs).Spec.Template.Spec.Containers[0].Args
			if _, ok := arg(args, "ingest-fetcher-logs"); !ok {
				t.Error("no --ingest-fetcher-logs")
			}
			if v, _ := arg(args, "fleet-streams-per-namespace"); v != "10" {
				t.Errorf("--fleet-streams-per-namespace=%q, want the default 10", v)
			}
			// The ClusterRole's pod rules are pinned in TestClusterRoleIsWhatTheCodeUses.
		}},
		{"no store", toggles["no store"], func(t *testing.T, objs []*unstructured.Unstructured) {
			for _, k := range [][2]string{{"Deployment", "aether-devhot-store"}, {"Service", "aether-devhot-store"}, {"Role", "aether-devhot-pusher"},
				{"ServiceAccount", "aether-devhot-store"}, {"ClusterRole", "aether-devhot-store"}, {"ClusterRoleBinding", "aether-devhot-store"},
				{"NetworkPolicy", "aether-devhot-store"}} {
				if lookup(objs, k[0], k[1]) != nil {
					t.Errorf("%s %s rendered without the store", k[0], k[1])
				}
			}
			if v, ok := arg(deployment(t, objs).Spec.Template.Spec.Containers[0].Args, "store-url"); ok {
				t.Errorf("--store-url=%s without the store: fetchers would get a token for nothing", v)
			}
		}},
		{"store on a pvc", toggles["store on a pvc"], func(t *testing.T, objs []*unstructured.Unstructured) {
			pvc := into[corev1.PersistentVolumeClaim](t, named(t, objs, "PersistentVolumeClaim", "aether-devhot-store"))
			if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) ||
				pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "fast" ||
				pvc.Spec.Resources.Requests.Storage().String() != "10Gi" {
				t.Errorf("PVC spec = %+v, want ReadWriteOnce, class fast, 10Gi", pvc.Spec)
			}
			v := storeDeployment(t, objs).Spec.Template.Spec.Volumes
			if len(v) != 1 || v[0].Name != "data" || v[0].EmptyDir != nil ||
				v[0].PersistentVolumeClaim == nil || v[0].PersistentVolumeClaim.ClaimName != pvc.Name {
				t.Errorf("store volumes = %+v, want data on the PVC %s", v, pvc.Name)
			}
		}},
		{"own store image, caps", toggles["own store image, caps"], func(t *testing.T, objs []*unstructured.Unstructured) {
			c := storeDeployment(t, objs).Spec.Template.Spec.Containers[0]
			if c.Image != "registry.example.com/store:1.2.3" {
				t.Errorf("store image = %q", c.Image)
			}
			want := map[string]string{"AETHER_STORE_MAX_BLOB_BYTES": "1048576", "AETHER_STORE_MAX_TOTAL_BYTES": "8388608", "AETHER_STORE_NAMESPACE_QUOTA_BYTES": "4194304",
				"AETHER_STORE_MAX_UPLOADS": "4", "AETHER_STORE_MAX_NAMESPACE_UPLOADS": "2", "AETHER_STORE_UPLOAD_TIMEOUT": "2m"}
			if got := env(c); !maps.Equal(got, want) {
				t.Errorf("store env = %v, want %v", got, want)
			}
			if got := deployment(t, objs).Spec.Template.Spec.Containers[0].Image; got != "aether-devhot:dev" {
				t.Errorf("manager image = %q", got)
			}
		}},
		{"no pusher role", toggles["no pusher role"], func(t *testing.T, objs []*unstructured.Unstructured) {
			if lookup(objs, "Role", "aether-devhot-pusher") != nil {
				t.Error("pusher Role rendered")
			}
			storeDeployment(t, objs)
		}},
		{"store url, ClusterIP", toggles["store url, ClusterIP"], func(t *testing.T, objs []*unstructured.Unstructured) {
			audience, _ := arg(storeDeployment(t, objs).Spec.Template.Spec.Containers[0].Args, "audience")
			if got := managerArg(t, objs, "store-url"); got != "http://10.0.0.80" || audience != got {
				t.Errorf("--store-url=%s, store --audience=%s; want both http://10.0.0.80", got, audience)
			}
			if svc := into[corev1.Service](t, named(t, objs, "Service", "aether-devhot-store")); svc.Spec.ClusterIP != "10.0.0.80" {
				t.Errorf("store Service clusterIP %q", svc.Spec.ClusterIP)
			}
		}},
		{"store limits", toggles["store limits"], func(t *testing.T, objs []*unstructured.Unstructured) {
			e := env(storeDeployment(t, objs).Spec.Template.Spec.Containers[0])
			for k, v := range map[string]string{"AETHER_STORE_NAMESPACE_QUOTA_BYTES": "2097152", "AETHER_STORE_MAX_UPLOADS": "8",
				"AETHER_STORE_MAX_NAMESPACE_UPLOADS": "3", "AETHER_STORE_UPLOAD_TIMEOUT": "30s"} {
				if e[k] != v {
					t.Errorf("%s=%q, want %q", k, e[k], v)
				}
			}
		}},
		{"no network policy", toggles["no network policy"], func(t *testing.T, objs []*unstructured.Unstructured) {
			if n := kinds(objs)["NetworkPolicy"]; n != 0 {
				t.Errorf("%d NetworkPolicies", n)
			}
		}},
		{"narrow network policy", toggles["narrow network policy"], func(t *testing.T, objs []*unstructured.Unstructured) {
			np := into[networkingv1.NetworkPolicy](t, named(t, objs, "NetworkPolicy", "aether-devhot-store"))
			from := np.Spec.Ingress[0].From
			if len(from) != 3 || from[0].NamespaceSelector.MatchLabels["dev-hot"] != "on" ||
				from[1].IPBlock == nil || from[1].IPBlock.CIDR != "10.0.0.10/32" || from[2].IPBlock == nil || from[2].IPBlock.CIDR != "10.0.0.11/32" {
				t.Errorf("ingress from %+v, want the namespace selector and both API server addresses", from)
			}
		}},
		{"defaults render no monitors", nil, func(t *testing.T, objs []*unstructured.Unstructured) {
			if n := kinds(objs); n["ServiceMonitor"]+n["PodMonitor"]+n["Namespace"]+n["PersistentVolumeClaim"] != 0 {
				t.Errorf("opt-in objects rendered by default: %v", n)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, objects(t, mustRender(t, r, tc.sets...))) })
	}
}

func TestTemplateRejectsBadValues(t *testing.T) {
	r := release{"aether-devhot", "aether-system"}
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{[]string{"sidecarMode=sometimes"}, "sidecarMode"},
		{[]string{"failurePolicy=Maybe"}, "failurePolicy"},
		{[]string{"replicaCount=0"}, "replicaCount"},
		{[]string{"serviceMonitor.enabled=true", "metrics.enabled=false"}, "serviceMonitor.enabled needs metrics.enabled"},
		{[]string{"store.maxBlobBytes=4096", "store.maxTotalBytes=1024"}, "store: want maxBlobBytes <= namespaceQuotaBytes <= maxTotalBytes"},
		{[]string{"store.namespaceQuotaBytes=1024"}, "store: want maxBlobBytes <= namespaceQuotaBytes <= maxTotalBytes"},
		{[]string{"store.maxUploads=1", "store.maxNamespaceUploads=2"}, "store: want 1 <= maxNamespaceUploads <= maxUploads"},
		{[]string{"store.uploadTimeout=120"}, "uploadTimeout"},
		{[]string{"store.url=aether-devhot-store"}, "store/url"},
		{[]string{"store.url=http://store/?token=x"}, "store/url"},
		{[]string{"store.maxBlobBytes=0"}, "maxBlobBytes"},
		{[]string{"store.maxBlobBytes=8589934593", "store.namespaceQuotaBytes=8589934593", "store.maxTotalBytes=8589934593"}, "maxBlobBytes"},
		{[]string{"store.maxTotalBytes=1099511627777"}, "maxTotalBytes"},
		{[]string{"store.namespaceQuotaBytes=1099511627777", "store.maxTotalBytes=1099511627777"}, "namespaceQuotaBytes"},
		{[]string{"store.maxUploads=65"}, "maxUploads"},
		{[]string{"store.maxNamespaceUploads=65", "store.maxUploads=65"}, "maxNamespaceUploads"},
		{[]string{"store.persistence.enabled=maybe"}, "persistence.enabled"},
		{[]string{"webhook.preStopSleepSeconds=30"}, "preStopSleepSeconds"},
		{[]string{"fleetMetrics.enabled=true", "fleetMetrics.streamsPerNamespace=0"}, "streamsPerNamespace"},
		{[]string{"fleetMetrics.enabled=true", "fleetMetrics.streamsPerNamespace=101"}, "streamsPerNamespace"},
	} {
		t.Run(strings.Join(tc.sets, ","), func(t *testing.T) {
			_, err := render(r, tc.sets...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render error = %v, want one that names %q", err, tc.want)
			}
		})
	}
}

// TestWebhookMatchesReference keeps the chart's webhook and the one the
// integration tests register (test/testdata/webhook.yaml) the same, except
// for what the chart owns: failurePolicy, namespaceSelector, the Service.
func TestWebhookMatchesReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "webhook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ref admissionregistrationv1.MutatingWebhookConfiguration
	if err := yaml.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	objs := objects(t, mustRender(t, release{"aether-devhot", "aether-system"}))
	got := into[admissionregistrationv1.MutatingWebhookConfiguration](t, only(t, objs, "MutatingWebhookConfiguration"))
	if got.Name != ref.Name || len(got.Webhooks) != len(ref.Webhooks) {
		t.Fatalf("webhook configuration %s with %d webhooks, want %s with %d", got.Name, len(got.Webhooks), ref.Name, len(ref.Webhooks))
	}
	w, want := got.Webhooks[0], ref.Webhooks[0]
	if w.ClientConfig.Service == nil || w.ClientConfig.Service.Name != want.ClientConfig.Service.Name ||
		w.ClientConfig.Service.Namespace != want.ClientConfig.Service.Namespace ||
		*w.ClientConfig.Service.Path != *want.ClientConfig.Service.Path {
		t.Errorf("clientConfig.service = %+v, want %+v", w.ClientConfig.Service, want.ClientConfig.Service)
	}
	w.FailurePolicy, want.FailurePolicy = nil, nil
	w.NamespaceSelector, want.NamespaceSelector = nil, nil
	w.ClientConfig, want.ClientConfig = admissionregistrationv1.WebhookClientConfig{}, admissionregistrationv1.WebhookClientConfig{}
	if !equality.Semantic.DeepEqual(w, want) {
		a, _ := yaml.Marshal(w)
		b, _ := yaml.Marshal(want)
		t.Errorf("chart webhook differs from test/testdata/webhook.yaml:\nchart:\n%s\nreference:\n%s", a, b)
	}
}

// TestClusterRoleIsWhatTheCodeUses pins the manager's rules, so that a
// change of its API use and of its RBAC go together (templates/rbac.yaml
// says where each rule comes from). Fleet metrics add read access to pods
// and their logs, and only they do.
func TestClusterRoleIsWhatTheCodeUses(t *testing.T) {
	crud := []string{"get", "list", "watch", "create", "update", "delete"}
	base := []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "patch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments/finalizers"}, Verbs: []string{"update"}},
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: crud},
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles", "rolebindings"}, Verbs: crud},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	fleet := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
		{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"list", "watch"}},
	}
	for _, tc := range []struct {
		name string
		sets []string
		want []rbacv1.PolicyRule
	}{
		{"defaults", nil, base},
		{"fleet metrics", toggles["fleet metrics"], append(slices.Clone(base), fleet...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := objects(t, mustRender(t, release{"aether-devhot", "aether-system"}, tc.sets...))
			cr := into[rbacv1.ClusterRole](t, named(t, objs, "ClusterRole", "aether-devhot-manager"))
			if !equality.Semantic.DeepEqual(cr.Rules, tc.want) {
				got, _ := yaml.Marshal(cr.Rules)
				want, _ := yaml.Marshal(tc.want)
				t.Errorf("ClusterRole rules:\n%s\nwant:\n%s", got, want)
			}
			role := into[rbacv1.Role](t, named(t, objs, "Role", "aether-devhot-leader-election"))
			if want := []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}}}; !equality.Semantic.DeepEqual(role.Rules, want) {
				t.Errorf("leader-election Role rules = %+v, want %+v", role.Rules, want)
			}
			if role.Namespace != "aether-system" {
				t.Errorf("leader-election Role in %q, want the release namespace", role.Namespace)
			}
		})
	}
}
