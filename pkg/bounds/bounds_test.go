package bounds_test

import (
	"errors"
	"flag"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/bounds"
)

var seconds = bounds.Int{Min: 1, Max: 3600, Unit: "seconds"}

func TestIntParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // -1: refused
	}{
		{"0", -1},                    // below
		{"1", 1},                     // at the minimum
		{"60", 60},                   // inside
		{"3600", 3600},               // at the maximum
		{"3601", -1},                 // above
		{"9999999999", -1},           // above, still an int64
		{"9999999999999999999", -1},  // overflows an int64
		{"-9999999999999999999", -1}, // overflows the other way
		{"-1", -1},                   // negative
		{"5s", -1},                   // a unit
		{"1.5", -1},                  // not whole
		{"1e3", -1},                  // exponent
		{"0x10", -1},                 // base prefix
		{"+5", 5},                    // ParseInt's explicit sign
		{" 5", -1},                   // space
		{"", -1},                     // empty
		{"five", -1},                 // not a number
	} {
		got, err := seconds.Parse(tc.in)
		if tc.want < 0 {
			var be *bounds.Error
			if !errors.As(err, &be) || be.Value != tc.in || !strings.Contains(err.Error(), "from 1 to 3600") {
				t.Errorf("Parse(%q) = %d, %v; want an *Error naming the value and the range", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestIntMessage(t *testing.T) {
	_, err := bounds.Int{Min: 0, Max: 1000, Unit: "retries"}.Parse("1001")
	if want := `"1001" is not a whole number of retries from 0 to 1000`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	_, err = bounds.Int{Min: 0, Max: 65535}.Parse("http")
	if want := `"http" is not a whole number from 0 to 65535`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestIntCheck(t *testing.T) {
	for n, ok := range map[int64]bool{0: false, 1: true, 3600: true, 3601: false, -1: false} {
		if err := seconds.Check(n); (err == nil) != ok {
			t.Errorf("Check(%d) = %v", n, err)
		}
	}
}

func TestSeconds(t *testing.T) {
	if d, err := seconds.Seconds("3600"); err != nil || d != time.Hour {
		t.Errorf("Seconds(3600) = %v, %v", d, err)
	}
	if d, err := seconds.Seconds("9999999999"); err == nil || d != 0 {
		t.Errorf("Seconds(9999999999) = %v, %v; want a refusal, not an overflowed duration", d, err)
	}
}

func TestDurationParse(t *testing.T) {
	r := bounds.Duration{Min: time.Second, Max: time.Hour}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"999ms", false}, {"1s", true}, {"2m", true}, {"1h", true}, {"1h0m1s", false},
		{"0", false}, {"-5s", false}, {"9999999999h", false}, {"120", false}, {"", false}, {"soon", false},
	} {
		d, err := r.Parse(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("Parse(%q) = %v, %v", tc.in, d, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "from 1s to 1h0m0s")) {
			t.Errorf("Parse(%q): %v does not name the range", tc.in, err)
		}
	}
	if err := r.Check(2 * time.Hour); err == nil || !strings.Contains(err.Error(), `"2h0m0s"`) {
		t.Errorf("Check(2h) = %v", err)
	}
}

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	n, d := 5, time.Minute
	fs.Var(bounds.IntFlag[int]{P: &n, Range: seconds}, "n", "")
	fs.Var(bounds.DurationFlag{P: &d, Range: bounds.Duration{Min: time.Second, Max: time.Hour}}, "d", "")
	if err := fs.Parse([]string{"-n=7", "-d=90s"}); err != nil || n != 7 || d != 90*time.Second {
		t.Fatalf("parse: %v, n=%d d=%s", err, n, d)
	}
	for _, arg := range []string{"-n=0", "-n=9999999999999999999", "-d=2h", "-d=-1s"} {
		if err := fs.Parse([]string{arg}); err == nil || !strings.Contains(err.Error(), "from") {
			t.Errorf("%s: %v, want the range", arg, err)
		}
	}
	if n != 7 || d != 90*time.Second {
		t.Errorf("a refused value was stored: n=%d d=%s", n, d)
	}
	if s := (bounds.IntFlag[int]{}).String() + (bounds.DurationFlag{}).String(); s != "" {
		t.Errorf("zero flags print %q", s)
	}
}

// FuzzIntParse: whatever the input (annotation values come from anyone who
// may write a Deployment), Parse accepts exactly the decimal numbers in
// range, and returns them unchanged.
func FuzzIntParse(f *testing.F) {
	for _, s := range []string{"1", "3600", "0", "3601", "9999999999", "9999999999999999999", "-1", "", "5s", "+1", "0x1", "１"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := seconds.Parse(v)
		want, perr := strconv.ParseInt(v, 10, 64)
		inRange := perr == nil && want >= seconds.Min && want <= seconds.Max
		if inRange != (err == nil) || (err == nil && got != want) {
			t.Fatalf("Parse(%q) = %d, %v; ParseInt = %d, %v", v, got, err, want, perr)
		}
	})
}
