// Command fetcher is the aether-devhot sidecar: it keeps the pod's code equal
// to its Deployment's aether.dev/digest annotation (DESIGN.md "Fetcher").
//
//	fetcher               run; configured by env, each variable with a flag twin
//	fetcher wait-ready    wait until /readyz answers 200 (legacy postStart hook)
//
// Exit status: 0 after SIGTERM or once ready, 2 on bad configuration, 1 on
// any other error. Artifact errors never end it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/fetcher"
)

// defaultWaitTimeout matches the native startupProbe's ten minutes.
const defaultWaitTimeout = 10 * time.Minute

// waitTimeoutRange is the range of wait-ready --timeout: it polls every
// 200ms, so 100ms still makes one try; the kubelet runs a postStart hook
// without a deadline of its own, and a first release that is not live in
// an hour (a 5-minute download and a 10-minute health gate at most) never
// will be.
var waitTimeoutRange = bounds.Duration{Min: 100 * time.Millisecond, Max: time.Hour}

// userAgent names the fetcher in the API server's audit log.
const userAgent = "aether-devhot-fetcher"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "fetcher:", err)
	if _, ok := errors.AsType[*fetcher.ConfigError](err); ok {
		return 2
	}
	return 1
}

// run is main without the process: arguments, environment and output come
// in, an error goes out.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "wait-ready" {
		return waitReady(ctx, args[1:], getenv, stderr)
	}
	cfg, err := fetcher.LoadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	// client-go's reflector logs through klog; keep those lines logfmt too.
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(stderr, nil)))
	client, err := kubeClient(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	return fetcher.Run(ctx, cfg, client, stderr)
}

// kubeClient uses the kubeconfig when one is given and the pod's projected
// token otherwise; client-go re-reads that token as the kubelet rotates it.
func kubeClient(kubeconfig string) (kubernetes.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	// KUBECONFIG came through LoadConfig, so that its flag twin overrides it.
	switch paths := filepath.SplitList(kubeconfig); len(paths) {
	case 0:
	case 1:
		rules.ExplicitPath = paths[0]
	default:
		rules.Precedence = paths
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client (in a pod the token is mounted by the webhook; outside set %s or --%s): %w",
			fetcher.EnvKubeconfig, fetcher.FlagName(fetcher.EnvKubeconfig), err)
	}
	rc.UserAgent = userAgent
	return kubernetes.NewForConfig(rc)
}

// waitReady is the legacy postStart hook: the kubelet starts the next
// container only once it returns, so the app finds a release in place.
func waitReady(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("fetcher wait-ready", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := getenv(sidecar.EnvMetricsAddr)
	if addr == "" {
		addr = sidecar.DefaultMetricsAddr
	}
	metricsFlag := fetcher.FlagName(sidecar.EnvMetricsAddr)
	fs.StringVar(&addr, metricsFlag, addr, "the fetcher's listen address (env "+sidecar.EnvMetricsAddr+")")
	timeout := defaultWaitTimeout
	fs.Var(bounds.DurationFlag{P: &timeout, Range: waitTimeoutRange}, "timeout", "give up after this long ("+waitTimeoutRange.String()+")")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &fetcher.ConfigError{Err: err}
	}
	if fs.NArg() > 0 {
		return &fetcher.ConfigError{Err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	url, err := fetcher.ReadyURL(addr)
	if err != nil {
		return &fetcher.ConfigError{Setting: sidecar.EnvMetricsAddr + " / --" + metricsFlag, Err: fmt.Errorf("%q: %w", addr, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := fetcher.WaitReady(ctx, url, 200*time.Millisecond); err != nil {
		return fmt.Errorf("gave up after %s: %w", timeout, err)
	}
	return nil
}
