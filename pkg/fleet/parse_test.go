package fleet

import (
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// Digests of the real lines below.
const (
	okDigest    = "sha256:d5fbae177b756fa1fcfbf28702342ea7859680db091530030208435a38544417"
	retryDigest = "sha256:66c1f23a6d8a74b29ce4cb1fe74d803412c91c4603cdd9e2f1dea958594b5799"
)

// TestParseLine runs fetcher log lines through ParseLine and then through
// Metrics, and names the series each one moves. The lines under "real" are
// verbatim output of pkg/sidecar/fetcher (its tests, run with -v), some with
// the kubelet's timestamp prefix as GET pods/log?timestamps=true returns
// them; only the slog line's workspace is a pod's instead of a temporary
// directory. The lines under "damaged" are real lines cut, corrupted or
// imitated.
func TestParseLine(t *testing.T) {
	const ns = "team-a"
	ts := time.Date(2026, 11, 30, 21, 13, 31, 392817402, time.UTC)
	const prefix = "2026-11-30T21:13:31.392817402Z "
	tests := []struct {
		name   string
		line   string
		ok     bool
		want   Record
		counts map[string]float64
	}{
		// real
		{
			name: "refresh ok with build annotations",
			line: prefix + "REFRESH_OK digest=" + okDigest + " latency_ms=1 bytes=20 files=2 downloaded=154 commit=0123abc build_timestamp=2026-05-01T10:00:00Z",
			ok:   true,
			want: Record{Time: ts, Record: refresh.Record{Marker: refresh.MarkerOK, Digest: okDigest, Latency: time.Millisecond, Bytes: 20, Files: 2, Downloaded: 154, Commit: "0123abc", BuildTimestamp: "2026-05-01T10:00:00Z"}},
			counts: map[string]float64{
				"dev_hot_fleet_refresh_total{namespace=team-a}":                 1,
				"dev_hot_fleet_refresh_latency_seconds_count{namespace=team-a}": 1,
				"dev_hot_fleet_refresh_latency_seconds_sum{namespace=team-a}":   0.001,
			},
		},
		{
			name: "refresh ok without a timestamp",
			line: "REFRESH_OK digest=" + okDigest + " latency_ms=312 bytes=20 files=2 downloaded=154",
			ok:   true,
			want: Record{Record: refresh.Record{Marker: refresh.MarkerOK, Digest: okDigest, Latency: 312 * time.Millisecond, Bytes: 20, Files: 2, Downloaded: 154}},
			counts: map[string]float64{
				"dev_hot_fleet_refresh_total{namespace=team-a}":                 1,
				"dev_hot_fleet_refresh_latency_seconds_count{namespace=team-a}": 1,
				"dev_hot_fleet_refresh_latency_seconds_sum{namespace=team-a}":   0.312,
			},
		},
		{
			name: "refresh live is parsed and not counted",
			line: prefix + "REFRESH_LIVE digest=" + okDigest + " live_ms=7",
			ok:   true,
			want: Record{Time: ts, Record: refresh.Record{Marker: refresh.MarkerLive, Digest: okDigest, Live: 7 * time.Millisecond}},
		},
		{
			name:   "http status, will retry",
			line:   prefix + `REFRESH_FAIL reason=http_status digest=` + retryDigest + ` error="GET http://127.0.0.1:34091/broken.tar.gz: 503 Service Unavailable" attempt=2 retry_in_ms=3`,
			ok:     true,
			want:   Record{Time: ts, Record: refresh.Record{Marker: refresh.MarkerFail, Digest: retryDigest, Reason: refresh.ReasonHTTPStatus, Error: "GET http://127.0.0.1:34091/broken.tar.gz: 503 Service Unavailable", Attempt: 2, RetryIn: 3 * time.Millisecond}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=http_status}": 1},
		},
		{
			name:   "checksum, given up",
			line:   `REFRESH_FAIL reason=checksum digest=sha256:273f8e6ee3d67bef44b8532622a2e638e28d437b06f116d7281787c92f4c04ed error="GET http://127.0.0.1:42671/v1.tar.gz: sha256 is 38e44e1f07f9200bf0b27827ce7348c3285d2e3cd194cb1d89606880e6e189cf, want 273f8e6ee3d67bef44b8532622a2e638e28d437b06f116d7281787c92f4c04ed" attempt=1`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: "sha256:273f8e6ee3d67bef44b8532622a2e638e28d437b06f116d7281787c92f4c04ed", Reason: refresh.ReasonChecksum, Error: "GET http://127.0.0.1:42671/v1.tar.gz: sha256 is 38e44e1f07f9200bf0b27827ce7348c3285d2e3cd194cb1d89606880e6e189cf, want 273f8e6ee3d67bef44b8532622a2e638e28d437b06f116d7281787c92f4c04ed", Attempt: 1, GaveUp: true}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=checksum}": 1},
		},
		{
			name:   "unsafe path, escaped quotes in the error",
			line:   `REFRESH_FAIL reason=unsafe_path digest=sha256:01d332298deac454a149b23823c92b2ba8cacd279d7f4d25e9ab36202650a118 error="entry \"../../../escaped\" climbs out with .." attempt=1`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: "sha256:01d332298deac454a149b23823c92b2ba8cacd279d7f4d25e9ab36202650a118", Reason: refresh.ReasonUnsafePath, Error: `entry "../../../escaped" climbs out with ..`, Attempt: 1, GaveUp: true}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=unsafe_path}": 1},
		},
		{
			name:   "unsupported entry",
			line:   `REFRESH_FAIL reason=unsupported_entry digest=sha256:1d20bf1c4fb8b48b0d101fbd22c27af60da6114d18e2039a031a51feeae49606 error="entry \"null\" has type '3'; only regular files and directories are allowed" attempt=1`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: "sha256:1d20bf1c4fb8b48b0d101fbd22c27af60da6114d18e2039a031a51feeae49606", Reason: refresh.ReasonUnsupportedEntry, Error: `entry "null" has type '3'; only regular files and directories are allowed`, Attempt: 1, GaveUp: true}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=unsupported_entry}": 1},
		},
		{
			name:   "size limit",
			line:   `REFRESH_FAIL reason=size_limit digest=sha256:f0612b36bedf2f52c5ee737695635b82ced01fc00a5193e04390ffa256cdfb68 error="archive has more than 5 entries" attempt=1`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: "sha256:f0612b36bedf2f52c5ee737695635b82ced01fc00a5193e04390ffa256cdfb68", Reason: refresh.ReasonSizeLimit, Error: "archive has more than 5 entries", Attempt: 1, GaveUp: true}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=size_limit}": 1},
		},
		{
			name:   "extract",
			line:   `REFRESH_FAIL reason=extract digest=sha256:7368c6c9c05d811118a4413a94c3005d68f23702ff735c5faa825a6c4339ff3b error="unexpected EOF" attempt=1`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: "sha256:7368c6c9c05d811118a4413a94c3005d68f23702ff735c5faa825a6c4339ff3b", Reason: refresh.ReasonExtract, Error: "unexpected EOF", Attempt: 1, GaveUp: true}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=extract}": 1},
		},
		{
			name:   "download, a quoted URL inside the error",
			line:   `REFRESH_FAIL reason=download digest=` + okDigest + ` error="GET http://127.0.0.1:37741/redirect.tar.gz: Get \"http://127.0.0.1:40467/v1.tar.gz\": redirect from host 127.0.0.1:37741 to another host 127.0.0.1:40467 refused" attempt=1`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: okDigest, Reason: refresh.ReasonDownload, Error: `GET http://127.0.0.1:37741/redirect.tar.gz: Get "http://127.0.0.1:40467/v1.tar.gz": redirect from host 127.0.0.1:37741 to another host 127.0.0.1:40467 refused`, Attempt: 1, GaveUp: true}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=download}": 1},
		},
		{
			name:   "bad annotation, a digest that is not one",
			line:   `REFRESH_FAIL reason=bad_annotation digest=sha256:NOT-HEX error="annotation aether.dev/digest: \"sha256:NOT-HEX\" must be \"sha256:\" followed by 64 lowercase hex digits" attempt=1`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: "sha256:NOT-HEX", Reason: refresh.ReasonBadAnnotation, Error: `annotation aether.dev/digest: "sha256:NOT-HEX" must be "sha256:" followed by 64 lowercase hex digits`, Attempt: 1, GaveUp: true}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=bad_annotation}": 1},
		},
		{
			// Not captured but what the writer's quoting rule makes of a
			// digest annotation with a space in it.
			name:   "bad annotation, a digest the writer quotes",
			line:   `REFRESH_FAIL reason=bad_annotation digest="sha256:a b" error="annotation aether.dev/digest: \"sha256:a b\" must be \"sha256:\" followed by 64 lowercase hex digits" attempt=1 commit=0123abc`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: "sha256:a b", Reason: refresh.ReasonBadAnnotation, Error: `annotation aether.dev/digest: "sha256:a b" must be "sha256:" followed by 64 lowercase hex digits`, Attempt: 1, GaveUp: true, Commit: "0123abc"}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=bad_annotation}": 1},
		},
		{
			name: "slog line",
			line: prefix + `time=2026-11-30T21:13:31.392Z level=INFO msg="fetcher started" namespace=ns deployment=app mode=watch interval=1s workspace=/workspace current=""`,
		},
		{
			name: "slog line without a digest yet",
			line: `time=2026-11-30T21:13:31.392Z level=INFO msg="no aether.dev/digest annotation yet"`,
		},

		// damaged
		{
			name: "slog line that quotes a marker",
			line: prefix + `time=2026-11-30T21:13:31.392Z level=WARN msg="REFRESH_OK digest=x latency_ms=1" digest=` + okDigest,
		},
		{name: "blank", line: ""},
		{name: "kubelet timestamp only", line: prefix},
		{name: "lookalike word", line: "REFRESH_OKAY digest=" + okDigest + " latency_ms=1 bytes=1 files=1"},
		{name: "lower case", line: "refresh_ok digest=" + okDigest + " latency_ms=1 bytes=1 files=1"},
		{name: "marker not first", line: "fetcher: REFRESH_OK digest=" + okDigest + " latency_ms=1 bytes=1 files=1"},
		{name: "not a kubelet timestamp", line: "2026-13-40T99:99:99Z REFRESH_OK digest=" + okDigest + " latency_ms=1 bytes=1 files=1"},
		{
			name: "bad latency is counted, not timed",
			line: "REFRESH_OK digest=" + okDigest + " latency_ms=12x bytes=20 files=2 downloaded=154",
			ok:   true,
			want: Record{Record: refresh.Record{Marker: refresh.MarkerOK, Digest: okDigest, Bytes: 20, Files: 2, Downloaded: 154, Malformed: []string{"latency_ms"}}},
			counts: map[string]float64{
				"dev_hot_fleet_refresh_total{namespace=team-a}":         1,
				"dev_hot_fleet_malformed_lines_total{namespace=team-a}": 1,
			},
		},
		{
			name: "negative and overflowing numbers",
			line: "REFRESH_OK digest=" + okDigest + " latency_ms=-5 bytes=99999999999999999999 files=+1",
			ok:   true,
			want: Record{Record: refresh.Record{Marker: refresh.MarkerOK, Digest: okDigest, Malformed: []string{"latency_ms", "bytes", "files"}}},
			counts: map[string]float64{
				"dev_hot_fleet_refresh_total{namespace=team-a}":         1,
				"dev_hot_fleet_malformed_lines_total{namespace=team-a}": 1,
			},
		},
		{
			name: "latency beyond time.Duration",
			line: "REFRESH_OK digest=" + okDigest + " latency_ms=9223372036854775807 bytes=1 files=1",
			ok:   true,
			want: Record{Record: refresh.Record{Marker: refresh.MarkerOK, Digest: okDigest, Bytes: 1, Files: 1, Malformed: []string{"latency_ms"}}},
			counts: map[string]float64{
				"dev_hot_fleet_refresh_total{namespace=team-a}":         1,
				"dev_hot_fleet_malformed_lines_total{namespace=team-a}": 1,
			},
		},
		{
			name: "bare marker",
			line: prefix + "REFRESH_OK",
			ok:   true,
			want: Record{Time: ts, Record: refresh.Record{Marker: refresh.MarkerOK, Malformed: []string{"digest", "latency_ms", "bytes", "files"}}},
			counts: map[string]float64{
				"dev_hot_fleet_refresh_total{namespace=team-a}":         1,
				"dev_hot_fleet_malformed_lines_total{namespace=team-a}": 1,
			},
		},
		{
			name:   "empty digest",
			line:   `REFRESH_FAIL reason=extract digest="" error="unexpected EOF" attempt=1`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Reason: refresh.ReasonExtract, Error: "unexpected EOF", Attempt: 1, GaveUp: true, Malformed: []string{"digest"}}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=extract}": 1, "dev_hot_fleet_malformed_lines_total{namespace=team-a}": 1},
		},
		{
			name:   "reason from a newer fetcher",
			line:   `REFRESH_FAIL reason=quota digest=` + retryDigest + ` error="over quota" attempt=1 retry_in_ms=10`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: retryDigest, Reason: refresh.ReasonUnknown, Error: "over quota", Attempt: 1, RetryIn: 10 * time.Millisecond, Malformed: []string{"reason"}}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=unknown}": 1, "dev_hot_fleet_malformed_lines_total{namespace=team-a}": 1},
		},
		{
			name:   "missing reason",
			line:   `REFRESH_FAIL digest=` + retryDigest + ` error="unexpected EOF" attempt=1`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: retryDigest, Reason: refresh.ReasonUnknown, Error: "unexpected EOF", Attempt: 1, GaveUp: true, Malformed: []string{"reason"}}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=unknown}": 1, "dev_hot_fleet_malformed_lines_total{namespace=team-a}": 1},
		},
		{
			name:   "line cut inside the error",
			line:   prefix + `REFRESH_FAIL reason=http_status digest=` + retryDigest + ` error="GET http://127.0.0.1:34091/broken.tar.gz: 503 Serv`,
			ok:     true,
			want:   Record{Time: ts, Record: refresh.Record{Marker: refresh.MarkerFail, Digest: retryDigest, Reason: refresh.ReasonHTTPStatus, GaveUp: true, Malformed: []string{"error"}}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=http_status}": 1, "dev_hot_fleet_malformed_lines_total{namespace=team-a}": 1},
		},
		{
			name:   "bad escape",
			line:   `REFRESH_FAIL reason=extract digest=` + retryDigest + ` error="bad \q escape" attempt=1`,
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: retryDigest, Reason: refresh.ReasonExtract, GaveUp: true, Malformed: []string{"error"}}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=extract}": 1, "dev_hot_fleet_malformed_lines_total{namespace=team-a}": 1},
		},
		{
			name:   "unknown keys, bare words, repeated keys, CRLF",
			line:   "REFRESH_FAIL reason=download reason=publish digest=" + retryDigest + ` flag error="e" future=1 attempt=1 attempt=2` + "\r\n",
			ok:     true,
			want:   Record{Record: refresh.Record{Marker: refresh.MarkerFail, Digest: retryDigest, Reason: refresh.ReasonPublish, Error: "e", Attempt: 2, GaveUp: true}},
			counts: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=publish}": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseLine(tc.line)
			if ok != tc.ok {
				t.Fatalf("ParseLine(%q) ok = %v, want %v", tc.line, ok, tc.ok)
			}
			if !ok {
				got = Record{}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseLine(%q)\n got %+v\nwant %+v", tc.line, got, tc.want)
			}
			reg := prometheus.NewRegistry()
			m, err := NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				m.Observe(ns, got)
			}
			want := tc.counts
			if want == nil {
				want = map[string]float64{}
			}
			if s := samples(t, reg); !maps.Equal(s, want) {
				t.Errorf("metrics\n got %v\nwant %v", s, want)
			}
		})
	}
}

// TestMetricsWarm checks that a namespace's series exist at 0 from its
// first fetcher, so that the first failure is a rate, that a second
// NewMetrics on the same registry shares the series, and that a clash with
// another collector of the same name is an error, not a panic.
func TestMetricsWarm(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Warm("team-a")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, mf := range mfs {
		n[mf.GetName()] = len(mf.GetMetric())
	}
	want := map[string]int{
		MetricRefreshTotal:          1,
		MetricRefreshFailureTotal:   len(refresh.Reasons()),
		MetricRefreshLatencySeconds: 1,
		MetricMalformedLinesTotal:   1,
	}
	if !maps.Equal(n, want) {
		t.Errorf("series per family %v, want %v", n, want)
	}
	if len(samples(t, reg)) != 0 {
		t.Errorf("warm series are not 0: %v", samples(t, reg))
	}
	again, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("registering the fleet metrics again: %v", err)
	}
	again.Observe("team-a", Record{Record: refresh.Record{Marker: refresh.MarkerFail, Reason: refresh.ReasonDownload}})
	if got := samples(t, reg); !maps.Equal(got, map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=download}": 1}) {
		t.Errorf("a second NewMetrics does not share the series: %v", got)
	}
	clash := prometheus.NewRegistry()
	clash.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: MetricRefreshTotal, Help: "Something else."}))
	if _, err := NewMetrics(clash); err == nil {
		t.Error("NewMetrics took over a different collector of the same name")
	}
}
