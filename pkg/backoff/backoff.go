// Package backoff spaces out retries: exponential, jittered and capped, so
// that many clients that failed together (the pods of one Deployment, the
// log streams of a restarted API server) do not retry in step, and a fixed
// cause is picked up soon enough.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff is the delay policy.
type Backoff struct {
	// Base is the ceiling after the first failure; it doubles with each.
	Base time.Duration
	// Max caps the ceiling.
	Max time.Duration
	// Equal draws from the upper half of the ceiling ("equal jitter"),
	// for retries that must never come at once; the default is full
	// jitter, from 0.
	Equal bool
}

// Delay returns how long to wait after the given number of consecutive
// failures (1 or more): a uniform pick from [0, c], or [c/2, c] with Equal,
// where c is min(Max, Base*2^(failures-1)).
func (b Backoff) Delay(failures int, r *rand.Rand) time.Duration {
	ceiling := b.Base
	for i := 1; i < failures && ceiling < b.Max; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, b.Max)
	if ceiling <= 0 {
		return 0
	}
	if b.Equal {
		return ceiling/2 + time.Duration(r.Int64N(int64(ceiling/2)+1))
	}
	return time.Duration(r.Int64N(int64(ceiling) + 1))
}
