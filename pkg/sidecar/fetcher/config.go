package fetcher

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/probe"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
	"github.com/aether-dev/aether-devhot/pkg/store"
)

// FetchMode is how the fetcher learns the Deployment's annotations.
type FetchMode string

const (
	// FetchWatch keeps a client-go watch open and re-checks its local cache
	// every interval, so an idle fetcher costs the API server almost nothing.
	FetchWatch FetchMode = "watch"
	// FetchPoll does a GET every interval, like the seed did.
	FetchPoll FetchMode = "poll"
)

// EnvKubeconfig is honoured outside a pod, as kubectl does.
const EnvKubeconfig = "KUBECONFIG"

// DefaultBackoffBase is the ceiling of the first retry delay.
const DefaultBackoffBase = 500 * time.Millisecond

// DefaultBackoffMax caps the retry backoff when AETHER_BACKOFF_MAX_SEC is unset.
const DefaultBackoffMax = 60 * time.Second

// Config is everything the fetcher is told; see LoadConfig. Each field is
// one environment variable of package sidecar (or KUBECONFIG) and its flag.
type Config struct {
	// PodName names this pod in Events, so that one misbehaving replica
	// stands out among its Deployment's pods.
	PodName string
	// PodNamespace is also the Deployment's namespace.
	PodNamespace string
	// Deployment is the one object the fetcher may read.
	Deployment string
	// Workspace is the volume shared with the app.
	Workspace string
	// FetchInterval is the resync period in watch mode and the poll period
	// in poll mode.
	FetchInterval time.Duration
	// FetchMode picks watch or poll.
	FetchMode FetchMode
	// MaxRetries is how many failures of one target end its attempts until
	// its digest or URL changes; 0 means never give up.
	MaxRetries int
	// BackoffMax caps the delay between retries.
	BackoffMax time.Duration
	// MaxArtifactBytes caps both the download and the extracted total.
	MaxArtifactBytes int64
	// CAFile adds CAs to the system pool for artifact downloads.
	CAFile string
	// StoreURL is the artifact store's root URL; nil without one. Only
	// downloads under it carry the store token.
	StoreURL *url.URL
	// StoreTokenFile holds the token the store reviews.
	StoreTokenFile string
	// PullSecretsDir holds the pod's pull secrets, for oci:// artifacts
	// (release.WithPullSecrets).
	PullSecretsDir string
	// MetricsAddr serves /metrics, /healthz and /readyz.
	MetricsAddr string
	// Kubeconfig is used outside a pod; in a pod it stays empty and the
	// projected service-account token is used.
	Kubeconfig string
	// AppDir is set when the pod runs the image's own code until the first
	// push (release zero): the fetcher is ready at once, and releases
	// without node_modules use the image's from there (see
	// release.Workspace.UseImageModules).
	AppDir string
	// AppProbe is the app container's probe that the health gate runs; nil
	// when it has none the fetcher can run.
	AppProbe *probe.Probe
}

// ConfigError reports a setting that cannot be used; cmd/fetcher exits 2 on
// it. Setting names both the environment variable and its flag, because
// either may have supplied the value.
type ConfigError struct {
	Setting string
	Err     error
}

// Error returns "<setting>: <problem>".
func (e *ConfigError) Error() string {
	if e.Setting == "" {
		return e.Err.Error()
	}
	return e.Setting + ": " + e.Err.Error()
}

// Unwrap returns the problem.
func (e *ConfigError) Unwrap() error { return e.Err }

// setting is one env var and its flag twin.
type setting struct {
	env   string
	def   string
	usage string
	apply func(c *Config, v string) error
}

// FlagName returns the flag twin of an environment variable: lower case,
// dashes, without the AETHER_ prefix (AETHER_FETCH_MODE -> fetch-mode).
func FlagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "AETHER_")), "_", "-")
}

// settingName names an env var and its flag together, for error messages.
func settingName(env string) string {
	return env + " / --" + FlagName(env)
}

var settings = []setting{
	{sidecar.EnvPodName, "", "pod name, shown in Events (default: the host name)", func(c *Config, v string) error {
		c.PodName = v
		return nil
	}},
	{sidecar.EnvPodNamespace, "", "namespace of the pod and its Deployment (required)", func(c *Config, v string) error {
		c.PodNamespace = v
		return required(v)
	}},
	{sidecar.EnvDeployment, "", "the Deployment to follow (required)", func(c *Config, v string) error {
		c.Deployment = v
		return required(v)
	}},
	{sidecar.EnvWorkspace, sidecar.WorkspaceMountPath, "the shared workspace directory", func(c *Config, v string) error {
		c.Workspace = v
		return required(v)
	}},
	{sidecar.EnvFetchIntervalSec, strconv.Itoa(sidecar.DefaultFetchIntervalSec), "resync (watch) or poll interval in whole seconds", func(c *Config, v string) (err error) {
		c.FetchInterval, err = annotations.FetchIntervalSecRange.Seconds(v)
		return err
	}},
	{sidecar.EnvFetchMode, string(FetchWatch), "watch or poll", func(c *Config, v string) error {
		c.FetchMode = FetchMode(v)
		if c.FetchMode != FetchWatch && c.FetchMode != FetchPoll {
			return errors.New(`must be "watch" or "poll"`)
		}
		return nil
	}},
	{sidecar.EnvMaxRetries, "0", "failures of one digest before waiting for a new one; 0 retries forever", func(c *Config, v string) error {
		n, err := maxRetriesRange.Parse(v)
		c.MaxRetries = int(n)
		return err
	}},
	{sidecar.EnvBackoffMaxSec, strconv.Itoa(int(DefaultBackoffMax / time.Second)), "cap of the retry backoff in whole seconds", func(c *Config, v string) (err error) {
		c.BackoffMax, err = backoffMaxSecRange.Seconds(v)
		return err
	}},
	{sidecar.EnvMaxArtifactBytes, strconv.FormatInt(release.DefaultMaxBytes, 10), "cap on the download and on the extracted total, in bytes", func(c *Config, v string) (err error) {
		c.MaxArtifactBytes, err = sidecar.MaxArtifactBytesRange.Parse(v)
		return err
	}},
	{sidecar.EnvCAFile, "", "PEM file of extra CAs trusted for artifact downloads", func(c *Config, v string) error {
		c.CAFile = v
		if v == "" {
			return nil
		}
		_, err := os.Stat(v)
		return err
	}},
	{sidecar.EnvStoreURL, "", "root URL of the artifact store: downloads under it, and only those, carry the store token", func(c *Config, v string) (err error) {
		if v == "" {
			return nil
		}
		c.StoreURL, err = store.ParseURL(v)
		return err
	}},
	{sidecar.EnvStoreTokenFile, sidecar.StoreTokenFile, "file of the token shown to the store, read for each download", func(c *Config, v string) error {
		c.StoreTokenFile = v
		return required(v)
	}},
	{sidecar.EnvPullSecretsDir, sidecar.PullSecretsDir, "directory of the pod's pull secrets (<name>/.dockerconfigjson), for oci:// artifacts; none there: anonymous pulls", func(c *Config, v string) error {
		c.PullSecretsDir = v
		return nil
	}},
	{sidecar.EnvMetricsAddr, sidecar.DefaultMetricsAddr, "listen address of /metrics, /healthz and /readyz", func(c *Config, v string) error {
		c.MetricsAddr = v
		_, err := metricsPort(v)
		return err
	}},
	{sidecar.EnvAppDir, "", "the app's directory in its image (\".\": its working directory) when the pod runs the image's code until the first push", func(c *Config, v string) error {
		c.AppDir = v
		if v != "" && v != sidecar.AppDirWorking && (!filepath.IsAbs(v) || filepath.Clean(v) != v) {
			return fmt.Errorf("must be %q or a clean absolute path", sidecar.AppDirWorking)
		}
		return nil
	}},
	{sidecar.EnvAppProbe, "", "the app container's readiness or startup probe, as the webhook encodes it, run before a release counts as live", func(c *Config, v string) (err error) {
		if v == "" {
			return nil
		}
		c.AppProbe, err = probe.Parse(v)
		return err
	}},
	{EnvKubeconfig, "", "kubeconfig used outside a pod", func(c *Config, v string) error {
		c.Kubeconfig = v
		return nil
	}},
}

func required(v string) error {
	if v == "" {
		return errors.New("must be set")
	}
	return nil
}

// Ranges of the fetcher's numeric settings (docs/settings.md), besides
// annotations.FetchIntervalSecRange and sidecar.MaxArtifactBytesRange.
var (
	// maxRetriesRange: 0 retries forever; a thousand failures of one
	// digest, each an hour apart at most, is forever in all but name.
	maxRetriesRange = bounds.Int{Min: 0, Max: 1000, Unit: "retries"}
	// backoffMaxSecRange: a fetcher that waits over an hour between tries
	// of one digest has given up on it; beyond 9223372036 s the delay
	// would overflow into a negative one.
	backoffMaxSecRange = bounds.Int{Min: 1, Max: 3600, Unit: "seconds"}
	// metricsPortRange: 0 picks a free port, as net.Listen does.
	metricsPortRange = bounds.Int{Min: 0, Max: 65535}
)

// metricsPort checks a listen address and returns its port.
func metricsPort(addr string) (string, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("must be host:port: %w", err)
	}
	if _, err := metricsPortRange.Parse(port); err != nil {
		return "", fmt.Errorf("port %w", err)
	}
	return port, nil
}

// LoadConfig reads every setting from getenv, lets the flags in args
// override it, and validates the result. Every error is a *ConfigError,
// except flag.ErrHelp after -h, when usage has been written to out.
func LoadConfig(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet("fetcher", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintln(out, "Usage: fetcher [flags]\n       fetcher wait-ready [--timeout=10m]\n\nEvery flag has an environment twin, which it overrides.")
		fs.PrintDefaults()
	}
	flags := make([]*string, len(settings))
	for i, s := range settings {
		usage := s.usage + " (env " + s.env
		if s.def != "" {
			usage += ", default " + s.def
		}
		flags[i] = fs.String(FlagName(s.env), "", usage+")")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, &ConfigError{Err: err}
	}
	if fs.NArg() > 0 {
		return Config{}, &ConfigError{Err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var c Config
	for i, s := range settings {
		v := getenv(s.env)
		if set[FlagName(s.env)] {
			v = *flags[i]
		}
		if v == "" {
			v = s.def
		}
		if err := s.apply(&c, v); err != nil {
			if _, named := err.(*bounds.Error); !named { // it names the value
				err = fmt.Errorf("%q: %w", v, err)
			}
			return Config{}, &ConfigError{Setting: settingName(s.env), Err: err}
		}
	}
	if c.PodName == "" {
		c.PodName, _ = os.Hostname()
	}
	return c, nil
}
