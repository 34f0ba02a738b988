package main

import (
	"time"

	"github.com/aether-dev/aether-devhot/pkg/bounds"
)

// Ranges of the CLI's numeric flags (docs/settings.md). A value outside
// one fails the command line's parse, naming the flag and the range.
var (
	// deliverTimeoutRange (push and rollback --timeout): no pod downloads,
	// extracts and restarts on new code in under a second, and a pod that
	// has not answered in an hour never will, since the fetcher gives a
	// release at most aether.dev/health-timeout-sec (10 minutes).
	deliverTimeoutRange = bounds.Duration{Min: time.Second, Max: time.Hour}
	// historyLimitRange (history --limit): 0 would list nothing, and a
	// negative one failed as a slice bound; the Events history reads from
	// hold far fewer releases than 1000.
	historyLimitRange = bounds.Int{Min: 1, Max: 1000, Unit: "releases"}
	// logsTailRange (logs --tail): -1 prints all; more lines than a
	// kubelet's rotated log holds mean all as well.
	logsTailRange = bounds.Int{Min: -1, Max: 1000000, Unit: "lines"}
	// logsSinceRange (logs --since): 0 is no bound; a negative one was
	// ignored without a word; 30 days is older than any dev pod's log.
	logsSinceRange = bounds.Duration{Min: 0, Max: 30 * 24 * time.Hour}
)
