package fetcher

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// handler serves /metrics, /healthz and /readyz. /readyz is what holds the
// app back (native startupProbe, legacy wait-ready) until code is live: a
// release, or with release zero the image's own code. It says which kind
// but never which digest: the kubelet probes it on the pod's IP, so every
// pod in the cluster can ask it too, and a digest is what names a blob in
// the store. The digest that runs is in the fetcher's Events and log.
// /healthz, the liveness probe, fails while the loop has waited more than
// wedgedAfter for a cancelled Apply, which then can only be stuck in the
// filesystem.
func (f *Fetcher) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(f.metrics.Registry, promhttp.HandlerOpts{Registry: f.metrics.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if at := f.cancelledAt.Load(); at != 0 {
			if waited := time.Since(time.Unix(0, at)); waited > wedgedAfter {
				http.Error(w, fmt.Sprintf("wedged: a cancelled download has not stopped after %s", waited.Round(time.Second)), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		live := f.live.Load()
		switch {
		case live != nil && *live != "":
			_, _ = io.WriteString(w, "ok: a release is live\n")
		case f.zero.Load():
			_, _ = io.WriteString(w, "ok release zero: the image's own code\n")
		default:
			http.Error(w, "no release is live yet", http.StatusServiceUnavailable)
		}
	})
	return mux
}

// ReadyURL is the /readyz a process in the same pod reaches for a fetcher
// listening on metricsAddr: loopback unless it listens on one address only.
func ReadyURL(metricsAddr string) (string, error) {
	host, port, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// WaitReady polls url every interval until it answers 200, for the legacy
// postStart hook, which must hold the app back until a release is live. It
// returns the last answer or error when ctx ends first.
func WaitReady(ctx context.Context, url string, interval time.Duration) error {
	client := &http.Client{Timeout: interval + time.Second}
	last := "no answer yet"
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		} else if ctx.Err() == nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %s", url, last)
		case <-t.C:
		}
	}
}
