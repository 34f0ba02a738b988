package mutate

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aether-dev/aether-devhot/pkg/prom"
)

// Values of the result label of aether_devhot_mutations_total.
const (
	resultInjected = "injected"
	resultReverted = "reverted"
	resultNoop     = "noop"
	resultDenied   = "denied"
)

// reasons are the Reasons of denials, whose series start at 0.
var reasons = []Reason{
	ReasonBadAnnotation, ReasonNoEntrypoint, ReasonReservedName, ReasonUnknownContainer, ReasonMalformed,
	ReasonAmbiguousContainer, ReasonNotNode, ReasonImageLookup, ReasonNodeVersion,
}

// Metrics are the admission handler's series. The manager registers them
// on controller-runtime's registry, which --metrics-bind-address serves; a
// Handler without Metrics counts nothing, so that the pure package has no
// side effect on import.
type Metrics struct {
	// Mutations is aether_devhot_mutations_total{result}.
	Mutations *prometheus.CounterVec
	// Denials is aether_devhot_denials_total{reason}, by Denial.Reason.
	Denials *prometheus.CounterVec
}

// NewMetrics registers the handler's series on reg, or shares those an
// earlier NewMetrics registered there.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	var m Metrics
	var err error
	if m.Mutations, err = prom.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aether_devhot_mutations_total",
		Help: "Deployment admission reviews by result: injected, reverted, noop (empty patch) or denied.",
	}, []string{"result"})); err != nil {
		return nil, err
	}
	if m.Denials, err = prom.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aether_devhot_denials_total",
		Help: "Deployments denied at admission, by the reason of the denial.",
	}, []string{"reason"})); err != nil {
		return nil, err
	}
	for _, r := range []string{resultInjected, resultReverted, resultNoop, resultDenied} {
		m.Mutations.WithLabelValues(r)
	}
	for _, r := range reasons {
		m.Denials.WithLabelValues(string(r))
	}
	return &m, nil
}

// count records one review; den is the denial, if any.
func (m *Metrics) count(result string, den *Denial) {
	if m == nil {
		return
	}
	m.Mutations.WithLabelValues(result).Inc()
	if den != nil {
		m.Denials.WithLabelValues(string(den.Reason)).Inc()
	}
}
