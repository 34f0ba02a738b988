package mutate

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Values of the result label of aether_devhot_mutations_total.
const (
	resultInjected = "injected"
	resultReverted = "reverted"
	resultNoop     = "noop"
	resultDenied   = "denied"
)

// mutations counts admission reviews of Deployments by what they did. It is
// registered with controller-runtime's registry, so the manager's
// --metrics-bind-address serves it beside controller-runtime's own.
var mutations = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "aether_devhot_mutations_total",
	Help: "Deployment admission reviews by result: injected, reverted, noop (empty patch) or denied.",
}, []string{"result"})

func init() {
	metrics.Registry.MustRegister(mutations)
	for _, r := range []string{resultInjected, resultReverted, resultNoop, resultDenied} {
		mutations.WithLabelValues(r)
	}
}
