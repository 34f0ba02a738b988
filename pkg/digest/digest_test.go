package digest

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{Prefix + hex, true},
		{Of([]byte("x")), true},
		{hex, false},
		{"sha512:" + hex, false},
		{Prefix + strings.ToUpper(hex), false},
		{Prefix + hex[:63], false},
		{Prefix + hex + "0", false},
		{Prefix + hex[:63] + "g", false},
		{"", false},
	} {
		if got := Valid(tc.in); got != tc.want {
			t.Errorf("Valid(%q) = %t, want %t", tc.in, got, tc.want)
		}
	}
}

func TestOf(t *testing.T) {
	// sha256 of the empty input.
	const want = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got := Of(nil); got != want {
		t.Errorf("Of(nil) = %s, want %s", got, want)
	}
}
