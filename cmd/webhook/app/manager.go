package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/aether-dev/aether-devhot/pkg/fleet"
	"github.com/aether-dev/aether-devhot/pkg/imageconfig/registry"
	"github.com/aether-dev/aether-devhot/pkg/mutate"
	"github.com/aether-dev/aether-devhot/pkg/rbac"
	"github.com/aether-dev/aether-devhot/pkg/readmit"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// LeaderElectionID names the Lease the replicas elect a reconciler leader with.
const LeaderElectionID = "aether-devhot.aether.dev"

// NewManager builds the manager from cfg and o: the webhook at
// mutate.Path on every replica; the RBAC and readmit reconcilers, and with
// o.IngestFetcherLogs the fleet Ingester, on the leader.
func NewManager(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	mode, err := resolveMode(cfg, o.SidecarMode)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}

	var tlsOpts []func(*tls.Config)
	if !o.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	req, err := labels.NewRequirement(rbac.ManagedByLabel, selection.Equals, []string{rbac.ManagedBy})
	if err != nil {
		return nil, err
	}
	managed := labels.NewSelector().Add(*req)

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host:    o.WebhookHost,
			Port:    o.WebhookPort,
			CertDir: o.CertDir,
			TLSOpts: tlsOpts,
		}),
		Metrics:                metricsserver.Options{BindAddress: o.MetricsBindAddress, TLSOpts: tlsOpts},
		HealthProbeBindAddress: o.HealthProbeBindAddr,
		LeaderElection:         o.LeaderElect,
		LeaderElectionID:       LeaderElectionID,
		// A stopping replica hands the Lease over at once instead of
		// leaving the next leader to wait out its lease: the process ends
		// right after the manager does.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: &o.SkipControllerNameValidation},
		// The cache holds only the RBAC objects we made, not every
		// ServiceAccount, Role and RoleBinding of the cluster.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.ServiceAccount{}: {Label: managed},
			&rbacv1.Role{}:           {Label: managed},
			&rbacv1.RoleBinding{}:    {Label: managed},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}

	mm, err := mutate.NewMetrics(metrics.Registry)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	handler := &mutate.Handler{Options: mutate.Options{FetcherImage: o.FetcherImage, Mode: mode, StoreURL: o.StoreURL}, Metrics: mm}
	if o.ImageLookup {
		handler.Images, handler.LookupTimeout = imageLookups(mgr, o).Source, o.ImageLookupTimeout
	}
	mgr.GetWebhookServer().Register(mutate.Path, &webhook.Admission{Handler: handler})
	if err := (&rbac.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("aether-devhot"),
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("rbac reconciler: %w", err)
	}
	if err := (&readmit.Reconciler{
		Client:         mgr.GetClient(),
		Recorder:       mgr.GetEventRecorder("aether-devhot"),
		WebhookStarted: mgr.GetWebhookServer().StartedChecker(),
		Excluded:       o.ExcludedNamespaces(),
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("readmit reconciler: %w", err)
	}
	if o.IngestFetcherLogs {
		if err := addIngester(mgr, o.FleetStreamsPerNamespace); err != nil {
			return nil, fmt.Errorf("--ingest-fetcher-logs: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, err
	}
	ctrl.Log.WithName("setup").Info("webhook configured", "path", mutate.Path, "sidecarMode", mode, "fetcherImage", o.FetcherImage,
		"storeURL", o.StoreURL, "imageLookup", o.ImageLookup, "imagePullSecrets", o.ImagePullSecrets, "ingestFetcherLogs", o.IngestFetcherLogs)
	return mgr, nil
}

// imageLookups reads images from their registries for admission,
// anonymously or with the pull secrets of the webhook's own namespace,
// which it reads uncached (it has no right to list Secrets).
func imageLookups(mgr ctrl.Manager, o Options) *registry.Registry {
	ro := registry.Options{}
	if len(o.ImagePullSecrets) > 0 {
		ro.Keychain = &registry.PullSecrets{Names: o.ImagePullSecrets, Get: func(ctx context.Context, name string) (*corev1.Secret, error) {
			var s corev1.Secret
			err := mgr.GetAPIReader().Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: name}, &s)
			return &s, err
		}}
	}
	return registry.New(ro)
}

// addIngester runs the fleet Ingester on the leader, with its metrics on
// controller-runtime's registry, which the manager serves at /metrics. It
// watches pods through an informer of its own, not the manager's cache, so
// that pods are cached only when fleet metrics are on.
func addIngester(mgr ctrl.Manager, perNamespace int) error {
	cs, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return err
	}
	ing, err := fleet.New(cs, metrics.Registry, mgr.GetLogger().WithName("fleet"), fleet.WithStreamsPerNamespace(perNamespace))
	if err != nil {
		return err
	}
	return mgr.Add(ing)
}

// resolveMode turns --sidecar-mode=auto into native when the API server is
// 1.29 or newer (native sidecars on by default), legacy otherwise.
func resolveMode(cfg *rest.Config, flag string) (sidecar.Mode, error) {
	if flag != SidecarModeAuto {
		return sidecar.Mode(flag), nil
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return "", fmt.Errorf("--sidecar-mode=auto: asking the API server its version: %w", err)
	}
	return ModeFor(v.Major, v.Minor), nil
}

// ModeFor picks the sidecar mode for a Kubernetes major.minor version as
// discovery reports it (the minor may carry a "+" suffix).
func ModeFor(major, minor string) sidecar.Mode {
	maj, err1 := strconv.Atoi(major)
	mnr, err2 := strconv.Atoi(trimPlus(minor))
	if err1 != nil || err2 != nil {
		return sidecar.ModeLegacy
	}
	if maj > 1 || mnr >= 29 {
		return sidecar.ModeNative
	}
	return sidecar.ModeLegacy
}

func trimPlus(s string) string {
	for len(s) > 0 && (s[len(s)-1] < '0' || s[len(s)-1] > '9') {
		s = s[:len(s)-1]
	}
	return s
}
