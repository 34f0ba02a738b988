// Command store is the artifact store of aether-devhot: content-addressed
// .tar.gz blobs that `kubectl devhot push` uploads (through the API
// server's service proxy) and the fetchers download. It ships in the same
// image as the webhook and the fetcher but is its own binary, because it
// needs none of the manager's API credentials, certificates or leader
// election, and it runs as one replica on a volume while the webhook runs
// several.
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
	"strconv"
	"syscall"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/store"
)

type options struct {
	addr string
	dir  string
	lim  store.Limits
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	o, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("store stopped", "error", err)
		os.Exit(1)
	}
}

// parse reads the flags over their environment twins.
func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("store", flag.ContinueOnError)
	o := options{}
	var envErr error
	envInt := func(name string, def int64) int64 {
		raw := os.Getenv(name)
		if raw == "" {
			return def
		}
		v, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || v < 1 {
			envErr = errors.Join(envErr, fmt.Errorf("%s=%q: want a whole number of bytes, 1 or more", name, raw))
			return def
		}
		return v
	}
	envStr := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&o.addr, "addr", envStr("AETHER_STORE_ADDR", ":8080"), "listen address (env AETHER_STORE_ADDR)")
	fs.StringVar(&o.dir, "dir", envStr("AETHER_STORE_DIR", "/data"), "directory of the blobs: an emptyDir or a PVC (env AETHER_STORE_DIR)")
	fs.Int64Var(&o.lim.MaxBlobBytes, "max-blob-bytes", envInt("AETHER_STORE_MAX_BLOB_BYTES", store.DefaultLimits.MaxBlobBytes),
		"largest blob accepted; larger uploads get 413 (env AETHER_STORE_MAX_BLOB_BYTES)")
	fs.Int64Var(&o.lim.MaxTotalBytes, "max-total-bytes", envInt("AETHER_STORE_MAX_TOTAL_BYTES", store.DefaultLimits.MaxTotalBytes),
		"total size kept; the least recently used blobs are evicted beyond it (env AETHER_STORE_MAX_TOTAL_BYTES)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if envErr != nil {
		return o, envErr
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("store takes no arguments, got %q", fs.Args())
	}
	return o, nil
}

// run serves until ctx ends, then drains requests for up to 10 s.
func run(ctx context.Context, o options, log *slog.Logger) error {
	s, err := store.Open(o.dir, o.lim, store.WithEvictionHook(func(id string) {
		log.Info("evicted", "digest", "sha256:"+id)
	}))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           store.Handler(s, log),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Info("serving", "addr", ln.Addr().String(), "dir", o.dir, "max_blob_bytes", o.lim.MaxBlobBytes,
		"max_total_bytes", o.lim.MaxTotalBytes, "stored_bytes", s.Total())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
