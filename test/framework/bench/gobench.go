package bench

import (
	"bufio"
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// GoBench is what `go test -bench` printed, by benchmark name (without the
// -GOMAXPROCS suffix) and unit ("ns/op", "allocs/op", "MB/s", custom
// metrics), one value per -count run.
type GoBench map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

// ParseGoBench reads the result lines of `go test -bench` output.
func ParseGoBench(out []byte) GoBench {
	g := GoBench{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		if g[name] == nil {
			g[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				g[name][f[i+1]] = append(g[name][f[i+1]], v)
			}
		}
	}
	return g
}

// Median is the median of name's unit over the runs; ok is false when
// there is none.
func (g GoBench) Median(name, unit string) (v float64, ok bool) {
	xs := g[name][unit]
	return Median(xs), len(xs) > 0
}
