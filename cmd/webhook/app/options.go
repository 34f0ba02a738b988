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

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
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
	// SkipControllerNameValidation lets one process build the manager more
	// than once, as tests that restart the webhook do. It has no flag.
	SkipControllerNameValidation bool
}

// AddFlags registers the flags of DESIGN.md "Command lines" on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.WebhookPort, "webhook-port", 9443, "Port the admission webhook serves HTTPS on.")
	fs.StringVar(&o.CertDir, "cert-dir", "", "Directory with tls.crt and tls.key; reloaded on change. Empty: <temp>/k8s-webhook-server/serving-certs.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8080", "Address of the Prometheus /metrics endpoint; 0 disables it.")
	fs.StringVar(&o.HealthProbeBindAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz; 0 disables them.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "Elect a leader for the RBAC reconciler, for more than one replica.")
	fs.StringVar(&o.FetcherImage, "fetcher-image", DefaultFetcherImage, "Image of the injected fetcher sidecar.")
	fs.StringVar(&o.SidecarMode, "sidecar-mode", SidecarModeAuto, "How the fetcher runs: native (Kubernetes >= 1.29), legacy, or auto to ask the API server once at start.")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", false, "Serve the webhook and metrics over HTTP/2 as well (off against HTTP/2 rapid-reset attacks).")
	fs.BoolVar(&o.ImageLookup, "image-lookup", true, "Read an image's ENTRYPOINT, CMD, WORKDIR and package.json from its registry when the app container sets no command (anonymously, or with --image-pull-secrets).")
	fs.DurationVar(&o.ImageLookupTimeout, "image-lookup-timeout", DefaultImageLookupTimeout, "Bound on one admission's image lookups; keep it inside the webhook's timeoutSeconds.")
	fs.Func("image-pull-secrets", "Comma-separated docker config Secrets in the webhook's own namespace ("+EnvNamespace+") for private registries.", func(v string) error {
		o.ImagePullSecrets = append(o.ImagePullSecrets, splitList(v)...)
		return nil
	})
	fs.Func("exclude-namespaces", "Comma-separated namespaces the webhook configuration leaves out besides kube-system and "+EnvNamespace+"; labelled Deployments there are not re-admitted.", func(v string) error {
		o.ExcludeNamespaces = append(o.ExcludeNamespaces, splitList(v)...)
		return nil
	})
	fs.BoolVar(&o.IngestFetcherLogs, "ingest-fetcher-logs", false, "Tail the fetchers' logs and export their refreshes per namespace on /metrics; needs list,watch on pods and get on pods/log cluster-wide. "+IngestEnv+"=1 also turns it on.")
}

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
	if o.WebhookPort < 1 || o.WebhookPort > 65535 {
		return fmt.Errorf("--webhook-port=%d: want a port from 1 to 65535", o.WebhookPort)
	}
	if o.FetcherImage == "" {
		return fmt.Errorf("--fetcher-image is empty: name the image that holds /fetcher")
	}
	if o.ImageLookup && (o.ImageLookupTimeout < 100*time.Millisecond || o.ImageLookupTimeout > 30*time.Second) {
		return fmt.Errorf("--image-lookup-timeout=%s: want 100ms to 30s, inside the webhook's timeoutSeconds", o.ImageLookupTimeout)
	}
	if len(o.ImagePullSecrets) > 0 && o.Namespace == "" {
		return fmt.Errorf("--image-pull-secrets is set but %s is not: the secrets are read in the webhook's own namespace", EnvNamespace)
	}
	return nil
}
