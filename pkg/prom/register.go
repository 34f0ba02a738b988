// Package prom registers the manager's Prometheus collectors on the
// registry it serves, once per process however often the manager is built.
package prom

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it, or returns the collector of
// c's type that an earlier call registered under the same name, so that a
// process that builds the manager again (as tests do) shares the series. A
// different collector of that name is an error.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, same := are.ExistingCollector.(C); same {
			return existing, nil
		}
	}
	return c, err
}
