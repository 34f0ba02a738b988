package fleet

import (
	"time"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// Record is one refresh line of a fetcher's log, with the time the kubelet
// stamped on it.
type Record struct {
	// Time is the kubelet's timestamp prefix (PodLogOptions.Timestamps);
	// zero when the line had none.
	Time time.Time
	refresh.Record
}
