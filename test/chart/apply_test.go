package chart

import (
	"regexp"
	"strings"
	"testing"
)

// TestApplyEveryObject applies what the chart renders, with every toggle,
// to the real API server, server-side: every object must validate against
// its built-in or CRD schema (cert-manager's Certificate and Issuer, the
// Prometheus Operator's monitors), the manager's and the store's pod
// templates must pass Pod Security "restricted" without a warning, and
// every object must then be there.
func TestApplyEveryObject(t *testing.T) {
	for name, sets := range toggles {
		t.Run(name, func(t *testing.T) {
			slug := strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(name), "-"), "-")
			r := release{slug, "chart-" + slug}
			manifest := install(t, r, sets...)
			want := len(objects(t, manifest))
			out, _ := kubectl(t, manifest, "get", "-f", "-", "-o", "name")
			if got := len(strings.Fields(out)); got != want {
				t.Errorf("%d objects stored, %d rendered:\n%s", got, want, out)
			}
		})
	}
}
