// Command store is the artifact store of aether-devhot: content-addressed
// .tar.gz blobs, kept per namespace, that `kubectl devhot push` uploads
// (through the API server's service proxy) and the fetchers download with
// their store token. It ships in the same image as the webhook and the
// fetcher but is its own binary, because it needs none of the manager's
// rights, certificates or leader election, and it runs as one replica on a
// volume while the webhook runs several.
//
// It calls the API server for TokenReviews, SubjectAccessReviews and a
// watch of the labelled Deployments' metadata (package kubeaccess): in a
// pod with its service account, outside one with KUBECONFIG.
//
// Every flag has an environment twin, which the flag overrides.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/store"
	"github.com/aether-dev/aether-devhot/pkg/store/kubeaccess"
)

type options struct {
	addr          string
	dir           string
	audience      string
	lim           store.Limits
	uploadTimeout time.Duration
}

// access is what run needs of kubeaccess.Access.
type access interface {
	store.Access
	Pinned(ns, hex string) bool
	Run(ctx context.Context) error
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	o, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	acc, err := connect(o.audience)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, acc, log); err != nil {
		log.Error("store stopped", "error", err)
		os.Exit(1)
	}
}

// connect finds the API server: the pod's service account, or KUBECONFIG
// outside a pod.
func connect(audience string) (*kubeaccess.Access, error) {
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no API server to review tokens with: not in a pod, and KUBECONFIG: %w", err)
	}
	return kubeaccess.New(cfg, audience)
}

// parse reads the flags over their environment twins. Each number is
// checked against its range both from the environment and from the flag.
func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("store", flag.ContinueOnError)
	o := options{lim: store.DefaultLimits, uploadTimeout: store.DefaultUploadTimeout}
	var envErr error
	refuse := func(name string, err error) {
		envErr = errors.Join(envErr, fmt.Errorf("%s=%w", name, err))
	}
	envStr := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	intVar := func(p *int64, name, env string, r bounds.Int, usage string) {
		if raw := os.Getenv(env); raw != "" {
			n, err := r.Parse(raw)
			if err != nil {
				refuse(env, err)
			}
			*p = n
		}
		fs.Var(bounds.IntFlag[int64]{P: p, Range: r}, name, usage+" (env "+env+"; "+r.String()+")")
	}
	fs.StringVar(&o.addr, "addr", envStr("AETHER_STORE_ADDR", ":8080"), "listen address (env AETHER_STORE_ADDR)")
	fs.StringVar(&o.dir, "dir", envStr("AETHER_STORE_DIR", "/data"), "directory of the blobs: an emptyDir or a PVC (env AETHER_STORE_DIR)")
	fs.StringVar(&o.audience, "audience", envStr("AETHER_STORE_AUDIENCE", ""),
		"audience of the fetchers' store tokens, the webhook's --store-url (env AETHER_STORE_AUDIENCE; required)")
	intVar(&o.lim.MaxBlobBytes, "max-blob-bytes", "AETHER_STORE_MAX_BLOB_BYTES", store.BlobBytesRange,
		"largest blob accepted; larger uploads get 413")
	intVar(&o.lim.MaxTotalBytes, "max-total-bytes", "AETHER_STORE_MAX_TOTAL_BYTES", store.TotalBytesRange,
		"total size kept; beyond it the least recently used blobs that no Deployment asks for are evicted")
	intVar(&o.lim.NamespaceQuotaBytes, "namespace-quota-bytes", "AETHER_STORE_NAMESPACE_QUOTA_BYTES", store.TotalBytesRange,
		"size kept per namespace; beyond it that namespace's own least recently used blobs go first")
	maxUploads, maxNSUploads := int64(o.lim.MaxUploads), int64(o.lim.MaxNamespaceUploads)
	intVar(&maxUploads, "max-uploads", "AETHER_STORE_MAX_UPLOADS", store.UploadsRange, "uploads in flight at once; more get 503")
	intVar(&maxNSUploads, "max-namespace-uploads", "AETHER_STORE_MAX_NAMESPACE_UPLOADS", store.UploadsRange,
		"uploads in flight at once for one namespace")
	if raw := os.Getenv("AETHER_STORE_UPLOAD_TIMEOUT"); raw != "" {
		d, err := store.UploadTimeoutRange.Parse(raw)
		if err != nil {
			refuse("AETHER_STORE_UPLOAD_TIMEOUT", err)
		}
		o.uploadTimeout = d
	}
	fs.Var(bounds.DurationFlag{P: &o.uploadTimeout, Range: store.UploadTimeoutRange}, "upload-timeout",
		"longest one upload may take to send its body; then 408 (env AETHER_STORE_UPLOAD_TIMEOUT; "+store.UploadTimeoutRange.String()+")")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if envErr != nil {
		return o, envErr
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("store takes no arguments, got %q", fs.Args())
	}
	o.lim.MaxUploads, o.lim.MaxNamespaceUploads = int(maxUploads), int(maxNSUploads)
	if err := o.lim.Validate(); err != nil {
		return o, err
	}
	if o.audience == "" {
		return o, errors.New("--audience (AETHER_STORE_AUDIENCE) is empty: set it to the webhook's --store-url, the audience of the fetchers' store tokens")
	}
	return o, nil
}

// run serves until ctx ends, then drains requests for up to 10 s.
func run(ctx context.Context, o options, acc access, log *slog.Logger) error {
	s, err := store.Open(o.dir, o.lim, store.WithPins(acc.Pinned), store.WithRemovalHook(func(ns, hex, reason string) {
		log.Info("removed", "namespace", ns, "digest", "sha256:"+hex, "reason", reason)
	}))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	accErr := make(chan error, 1)
	go func() { accErr <- acc.Run(ctx) }()
	srv := &http.Server{
		Handler:           store.Handler(s, acc, log, store.WithUploadTimeout(o.uploadTimeout)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	log.Info("serving", "addr", ln.Addr().String(), "dir", o.dir, "audience", o.audience, "max_blob_bytes", o.lim.MaxBlobBytes,
		"max_total_bytes", o.lim.MaxTotalBytes, "namespace_quota_bytes", o.lim.NamespaceQuotaBytes, "max_uploads", o.lim.MaxUploads,
		"max_namespace_uploads", o.lim.MaxNamespaceUploads, "upload_timeout", o.uploadTimeout, "stored_bytes", s.Total())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case err := <-accErr:
		if ctx.Err() == nil {
			_ = srv.Close()
			return fmt.Errorf("watching Deployments stopped: %v", err)
		}
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
