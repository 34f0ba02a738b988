package bench

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// Machine describes where the figures come from: CPU count, CPU model and
// the load average at the moment of the call.
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	return fmt.Sprintf("%d CPUs (nproc), %s, load average %s at start, %s/%s %s",
		runtime.NumCPU(), model, load, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
