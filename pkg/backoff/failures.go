package backoff

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Failures counts the consecutive failures of each key, for a reconciler
// that backs off each object on its own: one object that keeps failing
// must not slow the others, nor be retried in a tight loop. The zero value
// is ready; it is safe for concurrent use.
type Failures[K comparable] struct {
	mu sync.Mutex
	n  map[K]int
	r  *rand.Rand
}

// Next counts one more failure of key and returns how long to wait under b.
func (f *Failures[K]) Next(key K, b Backoff) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[K]int{}
		f.r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	f.n[key]++
	return b.Delay(f.n[key], f.r)
}

// Forget ends key's run of failures: it succeeded, or is gone.
func (f *Failures[K]) Forget(key K) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.n, key)
}
