package fleet

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// knownReasons is the closed enum of release.Reason; anything else is
// counted as ReasonUnknown.
var knownReasons = release.Reasons()

// required are the fields that DESIGN.md promises on each marker; a line
// without one is still a record, flagged in Malformed.
var required = map[Event][]string{
	EventRefreshOK:   {"digest", "latency_ms", "bytes", "files"},
	EventRefreshFail: {"reason", "digest", "error"},
	EventRefreshLive: {"digest", "live_ms"},
}

// maxMillis keeps a *_ms value inside time.Duration.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// ParseLine parses one fetcher log line, with or without the kubelet's
// RFC3339Nano timestamp prefix, which becomes Record.Time (zero without
// one) even for a line that is not a marker, so that the Ingester can place
// every line. It reports false for every line that is not a marker: slog
// lines (time=… level=… msg=…), blank lines, lookalikes such as
// "REFRESH_OKAY". A marker line is always a record, even when damaged —
// the marker word alone proves the event happened — and its damage is listed
// in Record.Malformed. A repeated key takes its last value; unknown keys are
// ignored so that a newer fetcher can add fields.
func ParseLine(line string) (Record, bool) {
	ts, rest := splitTimestamp(line)
	r, ok := parseMarker(rest)
	r.Time = ts
	return r, ok
}

// splitTimestamp removes the kubelet's "<RFC3339Nano> " prefix. Without one
// it returns the zero time and the line unchanged.
func splitTimestamp(line string) (time.Time, string) {
	line = strings.TrimRight(line, "\r\n")
	sp := strings.IndexByte(line, ' ')
	// A timestamp is at least "2006-01-02T15:04:05Z"; checking the first
	// byte avoids time.Parse on most lines that have none.
	if sp < len("2006-01-02T15:04:05Z") || line[0] < '0' || line[0] > '9' {
		return time.Time{}, line
	}
	ts, err := time.Parse(time.RFC3339Nano, line[:sp])
	if err != nil {
		return time.Time{}, line
	}
	return ts, line[sp+1:]
}

// parseMarker parses a line without its timestamp.
func parseMarker(s string) (Record, bool) {
	s = strings.TrimRight(s, "\r\n")
	word, rest, _ := strings.Cut(s, " ")
	ev := Event(word)
	if _, ok := required[ev]; !ok {
		return Record{}, false
	}
	r := Record{Event: ev}
	seen := map[string]bool{}
	var bad []string
	note := func(k string) {
		for _, b := range bad {
			if b == k {
				return
			}
		}
		bad = append(bad, k)
	}
	p := pairs{rest: rest}
	for p.next() {
		seen[p.key] = true
		if !r.set(p.key, p.value) {
			note(p.key)
		}
	}
	if p.err != nil {
		// Nothing after a broken quote can be trusted to be a field.
		note(p.key)
	}
	for _, k := range required[ev] {
		if !seen[k] {
			note(k)
		}
	}
	if ev == EventRefreshFail {
		r.GaveUp = !seen["retry_in_ms"]
		if r.Reason == "" {
			r.Reason = ReasonUnknown
		}
	}
	r.Malformed = bad
	return r, true
}

// set stores one field of r's event and reports whether v was valid. Keys
// that do not belong to the event are ignored.
func (r *Record) set(k, v string) bool {
	var ok bool
	switch {
	case k == "digest":
		r.Digest, ok = v, v != ""
	case k == "commit":
		r.Commit, ok = v, true
	case k == "build_timestamp":
		r.BuildTimestamp, ok = v, true
	case r.Event == EventRefreshOK && k == "latency_ms":
		r.Latency, ok = millis(v)
	case r.Event == EventRefreshOK && k == "bytes":
		r.Bytes, ok = count(v)
	case r.Event == EventRefreshOK && k == "files":
		r.Files, ok = count(v)
	case r.Event == EventRefreshOK && k == "downloaded":
		r.Downloaded, ok = count(v)
	case r.Event == EventRefreshFail && k == "reason":
		r.Reason, ok = ReasonUnknown, false
		for _, known := range knownReasons {
			if v == string(known) {
				r.Reason, ok = known, true
			}
		}
	case r.Event == EventRefreshFail && k == "error":
		r.Error, ok = v, true
	case r.Event == EventRefreshFail && k == "attempt":
		r.Attempt, ok = count(v)
	case r.Event == EventRefreshFail && k == "retry_in_ms":
		r.RetryIn, ok = millis(v)
	case r.Event == EventRefreshLive && k == "live_ms":
		r.Live, ok = millis(v)
	default:
		ok = true
	}
	return ok
}

// count parses a non-negative decimal integer.
func count(v string) (int64, bool) {
	// ParseInt alone would take "+1" and "-0".
	if v == "" || v[0] < '0' || v[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

func millis(v string) (time.Duration, bool) {
	n, ok := count(v)
	if !ok || n > maxMillis {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}
