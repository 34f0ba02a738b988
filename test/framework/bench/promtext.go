package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Sample is one line of the Prometheus text format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// ParseMetrics returns the samples of metric name in the text exposition
// format. Only what apiserver_request_total needs is supported: label
// values with \\, \" and \n escapes, and an optional timestamp.
func ParseMetrics(text []byte, name string) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		s := Sample{Name: name, Labels: map[string]string{}}
		if rest[0] == '{' {
			var err error
			if rest, err = parseLabels(rest[1:], s.Labels); err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("%q: no value", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		s.Value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseLabels reads `k="v",...}` into m and returns what follows the brace.
func parseLabels(s string, m map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		k, rest, ok := strings.Cut(s, "=")
		if !ok || !strings.HasPrefix(rest, `"`) {
			return "", fmt.Errorf("bad label near %q", s)
		}
		var v strings.Builder
		i := 1
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				if rest[i] == 'n' {
					v.WriteByte('\n')
					continue
				}
			}
			v.WriteByte(rest[i])
		}
		if i >= len(rest) {
			return "", fmt.Errorf("unterminated label value near %q", s)
		}
		m[strings.TrimSpace(k)] = v.String()
		s = rest[i+1:]
	}
}

// Sum adds the values of the samples that keep returns true for, and
// returns them per value of label by too ("" when by is empty).
func Sum(samples []Sample, keep func(map[string]string) bool, by string) (total float64, per map[string]float64) {
	per = map[string]float64{}
	for _, s := range samples {
		if keep(s.Labels) {
			total += s.Value
			per[s.Labels[by]] += s.Value
		}
	}
	return total, per
}
