package fleet

import (
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aether-dev/aether-devhot/pkg/prom"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// Metric names: the fetcher's seed metrics (DESIGN.md "Fetcher"), summed
// over the fetchers of each namespace, plus a health counter for the
// ingestion itself.
const (
	// MetricRefreshTotal counts REFRESH_OK lines: releases published.
	MetricRefreshTotal = "dev_hot_fleet_refresh_total"
	// MetricRefreshFailureTotal counts REFRESH_FAIL lines by reason, one of
	// refresh.Reasons or refresh.ReasonUnknown.
	MetricRefreshFailureTotal = "dev_hot_fleet_refresh_failure_total"
	// MetricRefreshLatencySeconds is a histogram of REFRESH_OK's latency_ms:
	// digest seen -> published.
	MetricRefreshLatencySeconds = "dev_hot_fleet_refresh_latency_seconds"
	// MetricMalformedLinesTotal counts marker lines with a missing or
	// unparseable field (Record.Malformed); they are counted above as well,
	// so this only says that the parser and the fetchers disagree.
	MetricMalformedLinesTotal = "dev_hot_fleet_malformed_lines_total"
	// MetricIgnoredPods is a gauge of the pods that have the dev-hot
	// annotation and a fetcher container but that no injected Deployment
	// owns: their logs are not read.
	MetricIgnoredPods = "dev_hot_fleet_pods_ignored"
	// MetricStreamsWaiting is a gauge of the fetchers whose log waits for a
	// stream slot, their namespace's or the shared ones.
	MetricStreamsWaiting = "dev_hot_fleet_streams_waiting"
)

// Metrics are the fleet series, labelled by the fetcher pod's namespace.
// Series live for the life of the process: a namespace that loses its last
// fetcher keeps its counters, as counters should.
type Metrics struct {
	// Refreshes is dev_hot_fleet_refresh_total{namespace}.
	Refreshes *prometheus.CounterVec
	// Failures is dev_hot_fleet_refresh_failure_total{namespace,reason}.
	Failures *prometheus.CounterVec
	// Latency is dev_hot_fleet_refresh_latency_seconds{namespace}.
	Latency *prometheus.HistogramVec
	// Malformed is dev_hot_fleet_malformed_lines_total{namespace}.
	Malformed *prometheus.CounterVec
	// IgnoredPods is dev_hot_fleet_pods_ignored{namespace}.
	IgnoredPods *prometheus.GaugeVec
	// StreamsWaiting is dev_hot_fleet_streams_waiting{namespace}.
	StreamsWaiting *prometheus.GaugeVec

	mu     sync.Mutex
	warmed map[string]bool
}

// NewMetrics registers the fleet series on reg; the manager passes
// controller-runtime's metrics.Registry so that they appear on its own
// /metrics. Series already registered there by an earlier NewMetrics — a
// process that builds the manager again, as tests do — are shared rather
// than refused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{warmed: map[string]bool{}}
	var err error
	if m.Refreshes, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRefreshTotal,
		Help: "Releases published by the dev-hot fetchers of a namespace (REFRESH_OK log lines).",
	}, []string{"namespace"})); err != nil {
		return nil, err
	}
	if m.Failures, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRefreshFailureTotal,
		Help: "Failed refreshes of the dev-hot fetchers of a namespace by reason (REFRESH_FAIL log lines).",
	}, []string{"namespace", "reason"})); err != nil {
		return nil, err
	}
	if m.Latency, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricRefreshLatencySeconds,
		Help:    "Time from a digest first seen to its release published, from the fetchers' REFRESH_OK log lines.",
		Buckets: refresh.LatencyBuckets,
	}, []string{"namespace"})); err != nil {
		return nil, err
	}
	if m.Malformed, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricMalformedLinesTotal,
		Help: "Fetcher marker log lines with a missing or unparseable field.",
	}, []string{"namespace"})); err != nil {
		return nil, err
	}
	if m.IgnoredPods, err = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricIgnoredPods,
		Help: "Pods with the dev-hot annotation and a fetcher container that no injected Deployment owns; their logs are not read.",
	}, []string{"namespace"})); err != nil {
		return nil, err
	}
	if m.StreamsWaiting, err = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricStreamsWaiting,
		Help: "Fetchers whose log waits for a stream slot (see --fleet-streams-per-namespace).",
	}, []string{"namespace"})); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	c, err := prom.Register(reg, c)
	if err != nil {
		return c, fmt.Errorf("fleet metrics: %w", err)
	}
	return c, nil
}

// Warm creates namespace's series at 0 when its first fetcher is seen, so
// that rate() and alerts see the first refresh or failure.
func (m *Metrics) Warm(namespace string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.warmed[namespace] {
		return
	}
	m.warmed[namespace] = true
	m.Refreshes.WithLabelValues(namespace)
	m.Latency.WithLabelValues(namespace)
	m.Malformed.WithLabelValues(namespace)
	for _, r := range refresh.Reasons() {
		m.Failures.WithLabelValues(namespace, string(r))
	}
}

// Observe counts one record from a fetcher in namespace.
func (m *Metrics) Observe(namespace string, r Record) {
	m.Warm(namespace)
	if len(r.Malformed) > 0 {
		m.Malformed.WithLabelValues(namespace).Inc()
	}
	switch r.Marker {
	case refresh.MarkerOK:
		m.Refreshes.WithLabelValues(namespace).Inc()
		// A missing or bad latency_ms would put a false 0 in the histogram.
		if !slices.Contains(r.Malformed, refresh.KeyLatency) {
			m.Latency.WithLabelValues(namespace).Observe(r.Latency.Seconds())
		}
	case refresh.MarkerFail:
		m.Failures.WithLabelValues(namespace, string(r.Reason)).Inc()
	}
}
