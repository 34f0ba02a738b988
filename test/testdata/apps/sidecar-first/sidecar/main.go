// Command sidecar is a tiny metrics exporter, the non-Node first container
// of the sidecar-first app: it answers /metrics in the Prometheus text
// format and /healthz on :9100 (METRICS_ADDR), and exits on SIGTERM. It is
// built statically (CGO_ENABLED=0) into an image FROM scratch whose
// ENTRYPOINT is /sidecar.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := os.Getenv("METRICS_ADDR")
	if addr == "" {
		addr = ":9100"
	}
	start := time.Now()
	var scrapes atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP sidecar_up Whether the exporter runs.\n# TYPE sidecar_up gauge\nsidecar_up 1\n")
		fmt.Fprintf(w, "# HELP sidecar_uptime_seconds Seconds since the exporter started.\n# TYPE sidecar_uptime_seconds gauge\nsidecar_uptime_seconds %.3f\n", time.Since(start).Seconds())
		fmt.Fprintf(w, "# HELP sidecar_scrapes_total Scrapes answered.\n# TYPE sidecar_scrapes_total counter\nsidecar_scrapes_total %d\n", n)
		fmt.Fprintf(w, "# HELP sidecar_pid The exporter's process ID.\n# TYPE sidecar_pid gauge\nsidecar_pid %d\n", os.Getpid())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("sidecar exporter listening on %s (pid %d)", addr, os.Getpid())
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
