// Package bench holds the small, dependency-free helpers of `make bench`
// (test/bench/cmd/benchtable): percentiles, the machine line, a reader of
// Prometheus text metrics, a parser of `go test -bench` output, /proc
// memory figures and the table printer.
package bench
