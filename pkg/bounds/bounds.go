// Package bounds is the one range check of every numeric setting of
// aether-devhot: annotations, environment variables and flags. Each setting
// declares its range once, next to its name, and parses through it, so
// that a value out of range is refused where it enters (at admission, or
// when a binary starts) with a message that names the range, instead of
// overflowing or wrapping later.
package bounds

import (
	"fmt"
	"strconv"
	"time"
)

// Int is a closed range of whole numbers.
type Int struct {
	Min, Max int64
	// Unit is what the number counts, in the plural ("seconds", "bytes"),
	// for messages; "" for a bare number such as a port.
	Unit string
}

// Error is a value outside its range, or not a number at all.
type Error struct {
	// Value is the input as given.
	Value string
	// Want says what the range accepts, e.g. "a whole number of seconds
	// from 1 to 3600".
	Want string
}

// Error returns `"<value>" is not <want>`.
func (e *Error) Error() string { return fmt.Sprintf("%q is not %s", e.Value, e.Want) }

// String describes r, e.g. "a whole number of seconds from 1 to 3600".
func (r Int) String() string {
	if r.Unit == "" {
		return fmt.Sprintf("a whole number from %d to %d", r.Min, r.Max)
	}
	return fmt.Sprintf("a whole number of %s from %d to %d", r.Unit, r.Min, r.Max)
}

// Parse reads v as a decimal whole number (no sign other than "-", no
// base prefix, no unit, no spaces) and checks that it is in r. Numbers too
// large for an int64 are out of range like any other.
func (r Int) Parse(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < r.Min || n > r.Max {
		return 0, &Error{Value: v, Want: r.String()}
	}
	return n, nil
}

// Check checks a number that was parsed elsewhere, e.g. a field of an
// options struct that tests fill in directly.
func (r Int) Check(n int64) error {
	if n < r.Min || n > r.Max {
		return &Error{Value: strconv.FormatInt(n, 10), Want: r.String()}
	}
	return nil
}

// Seconds parses v as a whole number of seconds in r. r.Max must be at
// most 9223372036, the largest number of seconds a time.Duration holds.
func (r Int) Seconds(v string) (time.Duration, error) {
	n, err := r.Parse(v)
	return time.Duration(n) * time.Second, err
}

// Duration is a closed range of durations.
type Duration struct {
	Min, Max time.Duration
}

// String describes r, e.g. "a duration from 1s to 1h0m0s".
func (r Duration) String() string {
	return fmt.Sprintf("a duration from %s to %s", r.Min, r.Max)
}

// Parse reads v as a Go duration ("90s", "2m") and checks that it is in r.
func (r Duration) Parse(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < r.Min || d > r.Max {
		return 0, &Error{Value: v, Want: r.String()}
	}
	return d, nil
}

// Check checks a duration that was parsed elsewhere.
func (r Duration) Check(d time.Duration) error {
	if d < r.Min || d > r.Max {
		return &Error{Value: d.String(), Want: r.String()}
	}
	return nil
}
