package fleet

import "time"

// cursor remembers how far one fetcher container's log has been counted, so
// that a reconnect, which must ask the kubelet for whole seconds
// (PodLogOptions.SinceTime travels as RFC 3339), counts no line twice.
//
// The position is the kubelet timestamp of the last line read plus the number
// of lines read with exactly that timestamp: a replay skips every line
// before it and that many lines at it. This relies on timestamps that never
// go back, which holds within a container's log (the fetcher writes all of
// it to stderr, one pipe, stamped in order) and across its restarts (each
// instance starts after the previous one ended). That is why one cursor
// serves a pod's container across restarts: a stream that lands on a newer
// instance than expected can only see newer lines.
type cursor struct {
	last time.Time
	// atLast counts the lines read whose timestamp equals last.
	atLast int
	// replay counts the lines at last that the current stream must skip.
	replay int
}

// newCursor starts counting at from: lines stamped earlier happened before
// this process began ingesting, and are left to whoever counted them then.
func newCursor(from time.Time) *cursor {
	return &cursor{last: from}
}

// since is the SinceTime of the next stream.
func (c *cursor) since() time.Time { return c.last }

// rewind prepares the cursor for a new stream that starts at since().
func (c *cursor) rewind() { c.replay = c.atLast }

// admit reports whether the line stamped ts is new, and moves past it.
func (c *cursor) admit(ts time.Time) bool {
	switch {
	case ts.Before(c.last):
		return false
	case ts.Equal(c.last):
		if c.replay > 0 {
			c.replay--
			return false
		}
		c.atLast++
		return true
	default:
		c.last, c.atLast, c.replay = ts, 1, 0
		return true
	}
}
