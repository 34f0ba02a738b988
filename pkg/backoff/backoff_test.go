package backoff

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffGrowsJitteredCapped(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	r := rand.New(rand.NewPCG(1, 2))
	const samples = 2000
	ceilings := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000, 2000}
	var prevMean time.Duration
	for i, ceiling := range ceilings {
		failures := i + 1
		ceiling *= time.Millisecond
		var sum, hi time.Duration
		lo := ceiling
		seen := map[time.Duration]bool{}
		for range samples {
			d := b.Delay(failures, r)
			if d < 0 || d > ceiling {
				t.Fatalf("failures=%d: delay %v outside [0, %v]", failures, d, ceiling)
			}
			sum += d
			lo, hi = min(lo, d), max(hi, d)
			seen[d] = true
		}
		mean := sum / samples
		// Full jitter: uniform over [0, ceiling], so the mean is near half
		// the ceiling and the picks spread over the whole range.
		if mean < ceiling*4/10 || mean > ceiling*6/10 {
			t.Errorf("failures=%d: mean %v, want about %v", failures, mean, ceiling/2)
		}
		if lo > ceiling/10 || hi < ceiling*9/10 || len(seen) < samples/2 {
			t.Errorf("failures=%d: picks not jittered over [0, %v]: min %v max %v distinct %d", failures, ceiling, lo, hi, len(seen))
		}
		if ceiling < b.Max && mean <= prevMean {
			t.Errorf("failures=%d: mean %v did not grow from %v", failures, mean, prevMean)
		}
		prevMean = mean
	}
	// A huge failure count neither overflows nor passes the cap.
	if d := b.Delay(1000, r); d < 0 || d > b.Max {
		t.Errorf("Delay(1000) = %v", d)
	}
	// The same seed gives the same delays, so the jitter is injected.
	r1, r2 := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	for n := 1; n < 10; n++ {
		if a, c := b.Delay(n, r1), b.Delay(n, r2); a != c {
			t.Fatalf("same seed, failures=%d: %v != %v", n, a, c)
		}
	}
}

func TestEqualJitterKeepsAFloor(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Minute, Equal: true}
	r := rand.New(rand.NewPCG(3, 4))
	for failures, ceiling := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 7: time.Minute, 100: time.Minute} {
		for range 500 {
			if d := b.Delay(failures, r); d < ceiling/2 || d > ceiling {
				t.Fatalf("failures=%d: delay %v outside [%v, %v]", failures, d, ceiling/2, ceiling)
			}
		}
	}
}

// Each key backs off on its own, and Forget starts it over.
func TestFailuresPerKey(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 8 * time.Second, Equal: true}
	var f Failures[string]
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if got := f.Next("a", b); got < want/2 || got > want {
			t.Errorf("failure %d of a: %s, want %s to %s", i+1, got, want/2, want)
		}
	}
	if got := f.Next("b", b); got > time.Second {
		t.Errorf("first failure of b: %s, want at most 1s: keys share a count", got)
	}
	f.Forget("a")
	if got := f.Next("a", b); got > time.Second {
		t.Errorf("a after Forget: %s, want at most 1s", got)
	}
}
