package fetcher

import (
	"math/rand/v2"
	"time"
)

// DefaultBackoffBase is the ceiling of the first retry delay.
const DefaultBackoffBase = 500 * time.Millisecond

// Backoff spaces out retries of a failing artifact: exponential with full
// jitter, so the pods of one Deployment do not hammer the artifact server in
// step, and capped, so a fixed artifact is picked up soon enough.
type Backoff struct {
	// Base is the ceiling after the first failure; it doubles with each.
	Base time.Duration
	// Max caps the ceiling (AETHER_BACKOFF_MAX_SEC).
	Max time.Duration
}

// Delay returns how long to wait after the given number of consecutive
// failures (1 or more): a uniform pick from [0, min(Max, Base*2^(failures-1))].
func (b Backoff) Delay(failures int, r *rand.Rand) time.Duration {
	ceiling := b.Base
	for i := 1; i < failures && ceiling < b.Max; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, b.Max)
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(r.Int64N(int64(ceiling) + 1))
}
