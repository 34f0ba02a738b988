package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/bench"
)

// goTests runs the project's own benchmarks with go test and keeps what
// they print: BenchmarkHandle and BenchmarkMutate (admission in-process),
// BenchmarkApply (extraction MB/s) and BenchmarkReload (publish → new
// version answering under real node --watch, ≥ 30 reloads).
func (b *runner) goTests() error {
	count := strconv.Itoa(b.cfg.count)
	runs := []struct {
		pkg, pattern string
		args         []string
	}{
		{"./pkg/mutate", "^Benchmark(Handle|Mutate)$", []string{"-benchmem", "-count", count}},
		{"./pkg/sidecar/release", "^BenchmarkApply$", []string{"-count", strconv.Itoa(min(b.cfg.count, 3))}},
		{"./test/node", "^BenchmarkReload$", []string{"-benchtime", "1x", "-count", "1"}},
	}
	var errs []string
	for _, r := range runs {
		fmt.Fprintf(os.Stderr, "    go test -bench '%s' %s %s\n", r.pattern, strings.Join(r.args, " "), r.pkg)
		ctx, cancel := context.WithTimeout(b.ctx, 4*time.Minute)
		args := append([]string{"test", "-run", "^$", "-bench", r.pattern}, r.args...)
		cmd := exec.CommandContext(ctx, "go", append(args, r.pkg)...)
		cmd.Dir = b.root
		cmd.Env = append(os.Environ(), "AETHER_REQUIRE_NODE=1")
		out, err := cmd.CombinedOutput()
		cancel()
		got := bench.ParseGoBench(out)
		maps.Copy(b.res.goBench, got)
		if err != nil || len(got) == 0 {
			errs = append(errs, fmt.Sprintf("%s: %v\n%s", r.pkg, err, tail(string(out), 15)))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
