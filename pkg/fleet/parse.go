package fleet

import (
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// ParseLine parses one fetcher log line, with or without the kubelet's
// RFC3339Nano timestamp prefix, which becomes Record.Time (zero without
// one) even for a line that is not a refresh line, so that the Ingester can
// place every line. The rest is refresh.Parse's: false for every line that
// is not a refresh line, and a damaged refresh line is a record with its
// damage in Malformed.
func ParseLine(line string) (Record, bool) {
	ts, rest := splitTimestamp(line)
	r, ok := refresh.Parse(rest)
	return Record{Time: ts, Record: r}, ok
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
