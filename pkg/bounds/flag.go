package bounds

import (
	"strconv"
	"time"
)

// IntFlag is a flag.Value, and a pflag.Value, that accepts only a number in
// Range: a flag out of range fails the command line's parse, naming the
// flag, the value and the range.
type IntFlag[T ~int | ~int64] struct {
	P     *T
	Range Int
}

// Set parses v through Range.
func (f IntFlag[T]) Set(v string) error {
	n, err := f.Range.Parse(v)
	if err != nil {
		return err
	}
	*f.P = T(n)
	return nil
}

// String returns the current value ("" for the zero IntFlag that package
// flag makes to print defaults).
func (f IntFlag[T]) String() string {
	if f.P == nil {
		return ""
	}
	return strconv.FormatInt(int64(*f.P), 10)
}

// Type names the value in pflag's usage.
func (f IntFlag[T]) Type() string { return "int" }

// DurationFlag is a flag.Value, and a pflag.Value, that accepts only a
// duration in Range.
type DurationFlag struct {
	P     *time.Duration
	Range Duration
}

// Set parses v through Range.
func (f DurationFlag) Set(v string) error {
	d, err := f.Range.Parse(v)
	if err != nil {
		return err
	}
	*f.P = d
	return nil
}

// String returns the current value.
func (f DurationFlag) String() string {
	if f.P == nil {
		return ""
	}
	return f.P.String()
}

// Type names the value in pflag's usage.
func (f DurationFlag) Type() string { return "duration" }
