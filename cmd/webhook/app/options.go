// Package app wires the webhook manager: the admission webhook, the RBAC
// reconciler, metrics and health. cmd/webhook parses flags into Options;
// tests build Options directly and run the same manager in-process.
package app

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/fleet"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/store"
)

// Mode values of --sidecar-mode besides the sidecar modes themselves.
const SidecarModeAuto = "auto"

// DefaultFetcherImage is the image injected when --fetcher-image is not
// given: the project's own image, which holds /webhook and /fetcher.
const DefaultFetcherImage = "aether-devhot:dev"

// Options are the manager's settings; each is a flag of cmd/webhook.
type Options struct {
	WebhookHost         string
	WebhookPort         int
	CertDir             string
	MetricsBindAddress  string
	HealthProbeBindAddr string
	LeaderElect         bool
	FetcherImage        string
	SidecarMode         string
	EnableHTTP2         bool
	// StoreURL is the artifact store's root URL as the pods reach it
	// (--store-url): each fetcher gets a token bound to it and shows that
	// token to it only. Empty: fetchers get no store token.
	StoreURL string
	// ImageLookup lets admission read an image's config (and, for `npm
	// start`, its package.json) from its registry when the app container
	// leaves its command to the image. Off in Options' zero value, so that
	// tests reach no registry unless they say so; on by default as a flag.
	ImageLookup bool
	// ImageLookupTimeout bounds one admission's lookups, well inside the
	// webhook's timeoutSeconds.
	ImageLookupTimeout time.Duration
	// ImagePullSecrets name docker config Secrets in Namespace, the
	// webhook's own, used for private registries: the manager never reads
	// Secrets of users' namespaces.
	ImagePullSecrets []string
	// Namespace is the webhook's own namespace (POD_NAMESPACE).
	Namespace string
	// ExcludeNamespaces are the namespaces, besides kube-system and
	// Namespace, that the webhook configuration's namespaceSelector leaves
	// out (the chart's webhook.excludeNamespaces): the readmit reconciler
	// gives up on labelled Deployments there instead of re-admitting them.
	ExcludeNamespaces []string
	// IngestFetcherLogs turns on fleet metrics: the leader tails the
	// fetchers' logs and exports their REFRESH_* markers per namespace on
	// its own /metrics (package fleet). Off by default, because it needs
	// cluster-wide read access to pods and pods/log.
	IngestFetcherLogs bool
	// FleetStreamsPerNamespace bounds the fetcher log streams that fleet
	// metrics keep open for one namespace, so that one namespace's fetchers
	// cannot take every stream (fleet.MaxStreams in all).
	FleetStreamsPerNamespace int
	// SkipControllerNameValidation lets one process build the manager more
	// than once, as tests that restart the webhook do. It has no flag.
	SkipControllerNameValidation bool
}

// AddFlags registers the flags of DESIGN.md "Command lines" on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	o.WebhookPort = 9443
	fs.Var(bounds.IntFlag[int]{P: &o.WebhookPort, Range: WebhookPortRange}, "webhook-port", "Port the admission webhook serves HTTPS on ("+WebhookPortRange.String()+").")
	fs.StringVar(&o.CertDir, "cert-dir", "", "Directory with tls.crt and tls.key; reloaded on change. Empty: <temp>/k8s-webhook-server/serving-certs.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8080", "Address of the Prometheus /metrics endpoint; 0 disables it.")
	fs.StringVar(&o.HealthProbeBindAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz; 0 disables them.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "Elect a leader for the RBAC reconciler, for more than one replica.")
	fs.StringVar(&o.FetcherImage, "fetcher-image", DefaultFetcherImage, "Image of the injected fetcher sidecar.")
	fs.StringVar(&o.SidecarMode, "sidecar-mode", SidecarModeAuto, "How the fetcher runs: native (Kubernetes >= 1.29), legacy, or auto to ask the API server once at start.")
	fs.StringVar(&o.StoreURL, "store-url", "", "Root URL of the artifact store as pods reach it (the chart's store): fetchers get a token with this audience and send it there only. Empty: no store token.")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", false, "Serve the webhook and metrics over HTTP/2 as well (off against HTTP/2 rapid-reset attacks).")
	fs.BoolVar(&o.ImageLookup, "image-lookup", true, "Read an image's ENTRYPOINT, CMD, WORKDIR and package.json from its registry when the app container sets no command (anonymously, or with --image-pull-secrets).")
	o.ImageLookupTimeout = DefaultImageLookupTimeout
	fs.Var(bounds.DurationFlag{P: &o.ImageLookupTimeout, Range: ImageLookupTimeoutRange}, "image-lookup-timeout",
		"Bound on one admission's image lookups; keep it inside the webhook's timeoutSeconds ("+ImageLookupTimeoutRange.String()+").")
	fs.Func("image-pull-secrets", "Comma-separated docker config Secrets in the webhook's own namespace ("+EnvNamespace+") for private registries.", func(v string) error {
		o.ImagePullSecrets = append(o.ImagePullSecrets, splitList(v)...)
		return nil
	})
	fs.Func("exclude-namespaces", "Comma-separated namespaces the webhook configuration leaves out besides kube-system and "+EnvNamespace+"; labelled Deployments there are not re-admitted.", func(v string) error {
		o.ExcludeNamespaces = append(o.ExcludeNamespaces, splitList(v)...)
		return nil
	})
	fs.BoolVar(&o.IngestFetcherLogs, "ingest-fetcher-logs", false, "Tail the fetchers' logs and export their refreshes per namespace on /metrics; needs list,watch on pods and get on pods/log cluster-wide. "+IngestEnv+"=1 also turns it on.")
	o.FleetStreamsPerNamespace = fleet.DefaultStreamsPerNamespace
	fs.Var(bounds.IntFlag[int]{P: &o.FleetStreamsPerNamespace, Range: FleetStreamsPerNamespaceRange}, "fleet-streams-per-namespace",
		"With --ingest-fetcher-logs, the fetcher log streams open at once for one namespace ("+FleetStreamsPerNamespaceRange.String()+", the bound of all).")
}

// WebhookPortRange is the range of --webhook-port: any TCP port but 0,
// since the API server must be told the port in advance.
var WebhookPortRange = bounds.Int{Min: 1, Max: 65535}

// FleetStreamsPerNamespaceRange is the range of
// --fleet-streams-per-namespace: at least one stream, at most all of them.
var FleetStreamsPerNamespaceRange = bounds.Int{Min: 1, Max: fleet.MaxStreams}

// ImageLookupTimeoutRange is the range of --image-lookup-timeout: under
// 100ms no registry answers; over 30s is past the API server's limit on a
// webhook's timeoutSeconds, so the API server gives up first and the
// denial that says why is lost.
var ImageLookupTimeoutRange = bounds.Duration{Min: 100 * time.Millisecond, Max: 30 * time.Second}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// ExcludedNamespaces are the namespaces the webhook never sees: kube-system,
// the webhook's own (when known) and ExcludeNamespaces, as the chart's
// namespaceSelector lists them.
func (o *Options) ExcludedNamespaces() []string {
	ns := []string{"kube-system"}
	if o.Namespace != "" {
		ns = append(ns, o.Namespace)
	}
	return append(ns, o.ExcludeNamespaces...)
}

// DefaultImageLookupTimeout is --image-lookup-timeout's default: half the
// chart's webhook timeoutSeconds, so that a slow registry ends in a denial
// that says so rather than in the API server's timeout.
const DefaultImageLookupTimeout = 5 * time.Second

// EnvNamespace names the webhook's own namespace, where its pull secrets
// are; the chart sets it from the downward API.
const EnvNamespace = "POD_NAMESPACE"

// IngestEnv turns on --ingest-fetcher-logs from the environment, for
// installs that set env rather than args; it is the flag's name in the
// project's env form (AETHER_ and the flag in upper case).
const IngestEnv = "AETHER_INGEST_FETCHER_LOGS"

// ApplyEnv reads IngestEnv from getenv after fs is parsed. A flag given on
// the command line wins over the environment, as in git-sync.
func (o *Options) ApplyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	if o.Namespace == "" {
		o.Namespace = getenv(EnvNamespace)
	}
	v := getenv(IngestEnv)
	if v == "" {
		return nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%s=%q: want 1 or 0", IngestEnv, v)
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "ingest-fetcher-logs" })
	if !given {
		o.IngestFetcherLogs = on
	}
	return nil
}

// Validate reports the first bad option, naming its flag.
func (o *Options) Validate() error {
	switch o.SidecarMode {
	case SidecarModeAuto, string(sidecar.ModeNative), string(sidecar.ModeLegacy):
	default:
		return fmt.Errorf("--sidecar-mode=%q: want auto, native or legacy", o.SidecarMode)
	}
	if err := WebhookPortRange.Check(int64(o.WebhookPort)); err != nil {
		return fmt.Errorf("--webhook-port: %w", err)
	}
	if o.FetcherImage == "" {
		return fmt.Errorf("--fetcher-image is empty: name the image that holds /fetcher")
	}
	if o.StoreURL != "" {
		if _, err := store.ParseURL(o.StoreURL); err != nil {
			return fmt.Errorf("--store-url: %w", err)
		}
	}
	if err := ImageLookupTimeoutRange.Check(o.ImageLookupTimeout); o.ImageLookup && err != nil {
		return fmt.Errorf("--image-lookup-timeout: %w, inside the webhook's timeoutSeconds", err)
	}
	if err := FleetStreamsPerNamespaceRange.Check(int64(o.FleetStreamsPerNamespace)); o.IngestFetcherLogs && err != nil {
		return fmt.Errorf("--fleet-streams-per-namespace: %w", err)
	}
	if len(o.ImagePullSecrets) > 0 && o.Namespace == "" {
		return fmt.Errorf("--image-pull-secrets is set but %s is not: the secrets are read in the webhook's own namespace", EnvNamespace)
	}
	return nil
}
