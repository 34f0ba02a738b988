package fleet

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// FuzzParseLine checks that ParseLine never panics, keeps its promises on
// any input, and reads a well-formed record back from its rendering. Run
// it with go test -fuzz=FuzzParseLine ./pkg/fleet.
func FuzzParseLine(f *testing.F) {
	for _, seed := range []string{
		"REFRESH_OK digest=" + digest + " latency_ms=312 bytes=1339 files=2 downloaded=845 commit=abc build_timestamp=2026-03-04T05:00:00Z",
		`2026-03-04T05:06:07.123456789Z REFRESH_FAIL reason=checksum digest=` + digest + ` error="a \"b\"\n\u00ab" attempt=1 retry_in_ms=713`,
		"2026-03-04T05:06:07+05:00 REFRESH_LIVE digest=" + digest + " live_ms=396",
		`time=2026-03-04T05:06:07.123Z level=INFO msg="watching" deployment=web`,
		`REFRESH_FAIL reason=x digest= error="unterminated`,
		"REFRESH_OK",
		"",
	} {
		f.Add(seed)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, ok := ParseLine(line)
		_, rest := splitTimestamp(line)
		word, _, _ := strings.Cut(rest, " ")
		if marker := slices.Contains([]refresh.Marker{refresh.MarkerOK, refresh.MarkerFail, refresh.MarkerLive}, refresh.Marker(word)); ok != marker {
			t.Fatalf("ParseLine(%q) ok = %v, first word %q", line, ok, word)
		}
		if !ok {
			return
		}
		m.Observe("fuzz", r)
		if r.Marker == refresh.MarkerFail && r.Reason != refresh.ReasonUnknown && !slices.Contains(refresh.Reasons(), r.Reason) {
			t.Fatalf("reason %q is outside the enum", r.Reason)
		}
		if r.Latency < 0 || r.RetryIn < 0 || r.Live < 0 || r.Bytes < 0 || r.Files < 0 || r.Downloaded < 0 || r.Attempt < 0 {
			t.Fatalf("negative field in %+v", r)
		}
		if len(r.Malformed) > 0 {
			return
		}
		again := render(r)
		back, ok := ParseLine(again)
		if !ok || !back.Time.Equal(r.Time) {
			t.Fatalf("%q -> %q -> %+v, %v", line, again, back, ok)
		}
		back.Time, r.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip %q -> %q\n got %+v\nwant %+v", line, again, back, r)
		}
	})
}
