package fleet

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestReadLine: lines are cut to the bound without being held whole, and a
// last line without its newline is the stream breaking, not a line.
func TestReadLine(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		max    int
		want   []string
	}{
		{name: "lines", stream: "a\nbc\n", max: 10, want: []string{"a", "bc"}},
		{name: "cut to the bound", stream: "abcdef\ng\n", max: 3, want: []string{"abc", "g"}},
		{name: "longer than the reader's buffer", stream: strings.Repeat("x", 40) + "\ny\n", max: 20, want: []string{strings.Repeat("x", 20), "y"}},
		{name: "broken inside a line", stream: "a\nREFRESH_OK dig", max: 10, want: []string{"a"}},
		{name: "empty", stream: "", max: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The smallest buffer bufio allows, so that long lines arrive
			// in fragments.
			r := bufio.NewReaderSize(strings.NewReader(tc.stream), 16)
			var got []string
			var err error
			for {
				var line string
				if line, err = readLine(r, tc.max); err != nil {
					break
				}
				got = append(got, line)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || !errors.Is(err, io.EOF) {
				t.Errorf("lines %q, error %v; want %q, EOF", got, err, tc.want)
			}
		})
	}
}
