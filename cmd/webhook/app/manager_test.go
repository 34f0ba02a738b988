package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/aether-dev/aether-devhot/pkg/fleet"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// discoveryServer answers the discovery requests that building the manager
// makes (its cache maps the RBAC kinds to resources), and nothing else.
func discoveryServer(t *testing.T) *rest.Config {
	t.Helper()
	// resources lists the namespaced kinds of gv, each as Kind and
	// resource name.
	resources := func(gv string, kindNames ...string) metav1.APIResourceList {
		l := metav1.APIResourceList{GroupVersion: gv}
		for i := 0; i+1 < len(kindNames); i += 2 {
			l.APIResources = append(l.APIResources, metav1.APIResource{
				Kind: kindNames[i], Name: kindNames[i+1], Namespaced: true, Verbs: metav1.Verbs{"get", "list", "watch"},
			})
		}
		return l
	}
	group := func(name string) metav1.APIGroup {
		v := metav1.GroupVersionForDiscovery{GroupVersion: name + "/v1", Version: "v1"}
		return metav1.APIGroup{Name: name, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v}
	}
	docs := map[string]any{
		"/api":                               metav1.APIVersions{Versions: []string{"v1"}},
		"/api/v1":                            resources("v1", "ServiceAccount", "serviceaccounts"),
		"/apis":                              metav1.APIGroupList{Groups: []metav1.APIGroup{group("rbac.authorization.k8s.io"), group("apps")}},
		"/apis/rbac.authorization.k8s.io/v1": resources("rbac.authorization.k8s.io/v1", "Role", "roles", "RoleBinding", "rolebindings"),
		"/apis/apps/v1":                      resources("apps/v1", "Deployment", "deployments"),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}
}

// TestNewManagerFleetMetrics: the fleet series are on controller-runtime's
// registry, which the manager serves at /metrics, exactly when ingestion is
// on. (The Ingester itself is tested end to end in package fleet; its log
// streams need a kubelet, which no test here has.)
func TestNewManagerFleetMetrics(t *testing.T) {
	cfg := discoveryServer(t)
	names := []string{fleet.MetricRefreshTotal, fleet.MetricRefreshFailureTotal, fleet.MetricRefreshLatencySeconds, fleet.MetricMalformedLinesTotal}
	for _, tc := range []struct {
		name   string
		ingest bool
	}{
		{name: "off", ingest: false},
		{name: "on", ingest: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewManager(cfg, Options{
				WebhookPort:                  9443,
				MetricsBindAddress:           "0",
				HealthProbeBindAddr:          "0",
				FetcherImage:                 DefaultFetcherImage,
				SidecarMode:                  string(sidecar.ModeLegacy),
				IngestFetcherLogs:            tc.ingest,
				FleetStreamsPerNamespace:     fleet.DefaultStreamsPerNamespace,
				SkipControllerNameValidation: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range names {
				// Unregister goes by name, and leaves the global registry
				// as it found it for the next case.
				probe := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "probe"})
				if got := metrics.Registry.Unregister(probe); got != tc.ingest {
					t.Errorf("%s registered = %v, want %v", name, got, tc.ingest)
				}
			}
		})
	}
}
