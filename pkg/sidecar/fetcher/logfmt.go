package fetcher

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// lockedWriter keeps the REFRESH_* markers and the other log lines from
// interleaving: each line is one Write under one lock.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// marker writes one logfmt line that starts with a bare event name, such as
// "REFRESH_OK digest=sha256:... latency_ms=12", for log pipelines to match.
// kv alternates keys and values; the error value is always quoted, as the
// contract shows it, other values only when logfmt needs it.
func marker(w io.Writer, event string, kv ...string) {
	var b strings.Builder
	b.WriteString(event)
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteByte(' ')
		b.WriteString(kv[i])
		b.WriteByte('=')
		if kv[i] == "error" || needsQuote(kv[i+1]) {
			b.WriteString(strconv.Quote(kv[i+1]))
		} else {
			b.WriteString(kv[i+1])
		}
	}
	b.WriteByte('\n')
	_, _ = io.WriteString(w, b.String())
}

func needsQuote(v string) bool {
	if v == "" {
		return true
	}
	for _, r := range v {
		if r == '=' || r == '"' || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}
