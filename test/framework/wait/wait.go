// Package wait polls until something holds: the one polling loop of the
// tests, the bench and the demo.
package wait

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// interval is the pause between two tries. What is polled usually takes
// longer itself (a kubectl call, an HTTP request), which paces the loop.
const interval = 10 * time.Millisecond

// Poll calls ok until it returns nil and returns nil, or returns ok's last
// error once timeout has passed.
func Poll(timeout time.Duration, ok func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ok()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %w", timeout, err)
		}
		time.Sleep(interval)
	}
}

// For is Poll that fails t with what and ok's last error.
func For(t testing.TB, what string, timeout time.Duration, ok func() error) {
	t.Helper()
	if err := Poll(timeout, ok); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Until is For for a condition without an error to tell.
func Until(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	For(t, what, timeout, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
}
