// Package bench holds the small, dependency-free helpers of `make bench`
// (hack/benchtable): percentiles, the machine line, a reader of
// Prometheus text metrics, a parser of `go test -bench` output, /proc
// memory figures and the table printer.
package bench
