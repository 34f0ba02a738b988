package fetcher

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// Event rate: each pod may report a burst of 100 refreshes, then about two
// a second. client-go's recorder (a burst of 25, then one per 5 minutes per
// object) silenced a `kubectl devhot push --watch` session after a dozen
// saves, and the CLI waits on these Events.
const (
	eventBurst = 100
	eventQPS   = 2
	// eventQueue bounds the Events waiting to be sent.
	eventQueue = 64
	// eventTimeout bounds one create.
	eventTimeout = 10 * time.Second
)

// eventSink sends the refresh Events of package refresh without holding up
// the fetcher's loop: a bounded queue, the rate above, and a log line for an
// Event dropped past either. It writes the events.k8s.io Events itself
// rather than through client-go's tools/events, whose recorder cannot set
// the annotation that carries the record.
type eventSink struct {
	client kubernetes.Interface
	pod    corev1.ObjectReference
	queue  chan *eventsv1.Event
	limit  flowcontrol.RateLimiter
	log    *slog.Logger
	done   chan struct{}
}

func newEventSink(client kubernetes.Interface, namespace, pod string, log *slog.Logger) *eventSink {
	return &eventSink{
		client: client,
		pod:    corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: namespace, Name: pod},
		queue:  make(chan *eventsv1.Event, eventQueue),
		limit:  flowcontrol.NewTokenBucketRateLimiter(eventQPS, eventBurst),
		log:    log,
		done:   make(chan struct{}),
	}
}

// report queues the Event of r about deployment, with note for humans.
func (s *eventSink) report(r refresh.Record, deployment corev1.ObjectReference, note string) {
	e := refresh.NewEvent(r, deployment, s.pod, note, time.Now())
	if !s.limit.TryAccept() {
		s.log.Warn("event dropped: over the rate limit", "reason", e.Reason, "digest", r.Digest)
		return
	}
	select {
	case s.queue <- e:
	default:
		s.log.Warn("event dropped: the API server is behind", "reason", e.Reason, "digest", r.Digest)
	}
}

// run sends queued Events until close.
func (s *eventSink) run() {
	defer close(s.done)
	for e := range s.queue {
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		_, err := s.client.EventsV1().Events(e.Namespace).Create(ctx, e, metav1.CreateOptions{})
		cancel()
		if err != nil {
			s.log.Warn("event not recorded", "reason", e.Reason, "error", err)
		}
	}
}

// close stops run once the queue is sent, or after wait.
func (s *eventSink) close(wait time.Duration) {
	close(s.queue)
	select {
	case <-s.done:
	case <-time.After(wait):
	}
}

// lockedWriter keeps the REFRESH_* lines and the other log lines from
// interleaving: each line is one Write under one lock.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
