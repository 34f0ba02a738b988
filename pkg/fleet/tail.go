package fleet

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/aether-dev/aether-devhot/pkg/backoff"
)

// tail follows the fetcher log of one pod, across the container's restarts.
// Its fields other than running belong to its goroutine.
type tail struct {
	uid             types.UID
	namespace, name string
	cur             *cursor
	// wake is poked (never blocking) when the pod changes.
	wake chan struct{}
	// drained is the restartCount up to which earlier instances have been
	// read with previous=true.
	drained int32
	// running is guarded by Ingester.mu: a goroutine owns the tail.
	running bool
}

func (t *tail) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// run follows t until its pod is gone or no longer a dev-hot pod with a
// fetcher, or ctx ends.
func (i *Ingester) run(ctx context.Context, t *tail) {
	log := i.log.WithValues("pod", t.namespace+"/"+t.name)
	b := backoff.Backoff{Base: i.minBackoff, Max: i.maxBackoff, Equal: true}
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	failures := 0
	for {
		st, ok := i.state(t)
		if !ok || ctx.Err() != nil {
			if i.done(ctx, t) {
				return
			}
			continue
		}
		if st.restarts > t.drained {
			// The container restarted since we last looked. Lines that the
			// ended instance wrote after our stream broke are only under
			// previous=true. Best effort: should it be an even older
			// instance, the cursor makes it harmless.
			if _, err := i.read(ctx, t, true); err != nil && ctx.Err() == nil {
				log.V(1).Info("cannot read the previous fetcher log", "error", err.Error())
			}
			t.drained = st.restarts
		}
		if !st.running {
			// Waiting or terminated: nothing to follow until the pod changes.
			select {
			case <-t.wake:
			case <-ctx.Done():
			}
			continue
		}
		began := time.Now()
		progressed, err := i.read(ctx, t, false)
		if ctx.Err() != nil {
			continue
		}
		if progressed || time.Since(began) > b.Max {
			failures = 0
		}
		failures++
		delay := b.Delay(failures, r)
		switch {
		case err == nil, errors.Is(err, io.EOF):
			log.V(1).Info("fetcher log ended", "reconnectIn", delay)
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
			log.Error(err, "cannot read fetcher logs: the manager needs get on pods/log", "retryIn", delay)
		default:
			log.V(1).Info("fetcher log broke", "error", err.Error(), "retryIn", delay)
		}
		sleep(ctx, delay)
	}
}

// read streams t's fetcher log from its cursor — the last instance before
// the current one if previous, else following the current one — and counts
// the marker lines it has not counted yet. It reports whether any new line
// was read.
func (i *Ingester) read(ctx context.Context, t *tail, previous bool) (bool, error) {
	// The namespace's slot first: a namespace at its bound waits without
	// holding one of the slots that the others share.
	ns := i.namespaceSlots(t.namespace)
	if !i.acquire(ctx, ns, t.namespace) {
		return false, ctx.Err()
	}
	defer func() { <-ns }()
	if !i.acquire(ctx, i.slots, t.namespace) {
		return false, ctx.Err()
	}
	defer func() { <-i.slots }()

	rc, err := i.logs.Open(ctx, t.namespace, t.name, &corev1.PodLogOptions{
		Container:  fetcherContainer,
		Follow:     !previous,
		Previous:   previous,
		Timestamps: true,
		SinceTime:  &metav1.Time{Time: t.cur.since()},
	})
	if err != nil {
		return false, err
	}
	defer rc.Close()
	// A follow stream blocks in Read; closing it is what ends the Read.
	defer context.AfterFunc(ctx, func() { _ = rc.Close() })()

	t.cur.rewind()
	br := bufio.NewReader(rc)
	progressed := false
	for {
		line, err := readLine(br, maxLine)
		if err != nil {
			return progressed, err
		}
		r, marker := ParseLine(line)
		// Without its timestamp a line cannot be placed, so it could be
		// counted twice; the kubelet stamps every line we ask for.
		if r.Time.IsZero() || !t.cur.admit(r.Time) {
			continue
		}
		progressed = true
		if marker {
			i.metrics.Observe(t.namespace, r)
		}
	}
}

// namespaceSlots is the semaphore of namespace's streams.
func (i *Ingester) namespaceSlots(namespace string) chan struct{} {
	i.mu.Lock()
	defer i.mu.Unlock()
	ch := i.nsSlots[namespace]
	if ch == nil {
		ch = make(chan struct{}, i.perNamespace)
		i.nsSlots[namespace] = ch
	}
	return ch
}

// acquire takes a slot of sem for a fetcher of namespace, false when ctx
// ends first. While it waits, the fetcher counts in StreamsWaiting, and the
// first wait of each namespace is logged.
func (i *Ingester) acquire(ctx context.Context, sem chan struct{}, namespace string) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	i.noteMu.Lock()
	i.tellOnce("waiting", namespace, "every log stream slot is taken: fetchers of this namespace wait for one to free",
		"perNamespace", i.perNamespace, "total", MaxStreams, "metric", MetricStreamsWaiting)
	i.noteMu.Unlock()
	waiting := i.metrics.StreamsWaiting.WithLabelValues(namespace)
	waiting.Inc()
	defer waiting.Dec()
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// readLine returns the next line without its newline, cut to max bytes. A
// last line without a newline is an error, not a line: the stream broke
// inside it, and the reconnect replays it whole.
func readLine(r *bufio.Reader, max int) (string, error) {
	var b strings.Builder
	for {
		frag, err := r.ReadSlice('\n')
		if room := max - b.Len(); room > 0 {
			b.Write(frag[:min(len(frag), room)])
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return "", err
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	}
}

func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}
