package fetcher

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// reasons is the closed enum of failure reasons. Their series exist from the
// start at 0, so that rate() and alerts see the first failure.
var reasons = refresh.Reasons()

// Metrics are the fetcher's Prometheus series (DESIGN.md "Fetcher"), on a
// registry of their own so that nothing else in the binary leaks into them.
type Metrics struct {
	// Registry is what /metrics serves.
	Registry *prometheus.Registry
	// Refreshes is dev_hot_refresh_total: releases published.
	Refreshes prometheus.Counter
	// Failures is dev_hot_refresh_failure_total{reason}.
	Failures *prometheus.CounterVec
	// Latency is dev_hot_refresh_latency_seconds: digest seen -> published.
	Latency prometheus.Histogram
	// ConsecutiveFailures is dev_hot_refresh_consecutive_failures, reset by
	// a success.
	ConsecutiveFailures prometheus.Gauge
	// LastSuccess is dev_hot_last_success_timestamp_seconds.
	LastSuccess prometheus.Gauge
	// Rollbacks is dev_hot_rollbacks_total: releases the health gate
	// rolled back because the app crashed on them or was not healthy.
	Rollbacks prometheus.Counter
}

// NewMetrics registers the fetcher's series, plus the Go and process
// collectors, which show the sidecar's memory while it streams an artifact.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dev_hot_refresh_total",
			Help: "Releases published.",
		}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dev_hot_refresh_failure_total",
			Help: "Failed refreshes by reason.",
		}, []string{"reason"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dev_hot_refresh_latency_seconds",
			Help:    "Time from a digest first seen to its release published.",
			Buckets: refresh.LatencyBuckets,
		}),
		ConsecutiveFailures: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dev_hot_refresh_consecutive_failures",
			Help: "Failures since the last published release.",
		}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dev_hot_last_success_timestamp_seconds",
			Help: "Unix time of the last published release.",
		}),
		Rollbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dev_hot_rollbacks_total",
			Help: "Releases rolled back because the app crashed on them or was not healthy in time.",
		}),
	}
	for _, r := range reasons {
		m.Failures.WithLabelValues(string(r))
	}
	m.Registry.MustRegister(
		m.Refreshes, m.Failures, m.Latency, m.ConsecutiveFailures, m.LastSuccess, m.Rollbacks,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}
