package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// digest is a well-formed artifact digest for the fixtures.
const digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// t0 is when the test ingesters start counting.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// stamp is a kubelet-prefixed line at t0+d, in the kubelet's fixed-width
// format.
func stamp(d time.Duration, line string) string {
	return t0.Add(d).Format("2006-01-02T15:04:05.000000000Z07:00") + " " + line
}

// samples gathers reg as "name{k=v,...}" -> value, histograms as _count and
// _sum, leaving out zeros so that a table names only what moved.
func samples(t testing.TB, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := series(m)
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[mf.GetName()+labels] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[mf.GetName()+labels] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[mf.GetName()+"_count"+labels] = float64(m.GetHistogram().GetSampleCount())
				out[mf.GetName()+"_sum"+labels] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	maps.DeleteFunc(out, func(_ string, v float64) bool { return v == 0 })
	return out
}

func series(m *dto.Metric) string {
	var kv []string
	for _, l := range m.GetLabel() {
		kv = append(kv, l.GetName()+"="+l.GetValue())
	}
	slices.Sort(kv)
	return "{" + strings.Join(kv, ",") + "}"
}

// namespaces lists every namespace label on reg, zero series included.
func namespaces(t testing.TB, reg prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "namespace" && !slices.Contains(ns, l.GetValue()) {
					ns = append(ns, l.GetValue())
				}
			}
		}
	}
	slices.Sort(ns)
	return ns
}

// render writes r in the fetcher's order with every value quoted, which
// the parser must read back as it reads the fetcher's bare values (those are
// in TestParseLine's real lines), with the kubelet's prefix when r has a
// time.
// render is r's line as the kubelet returns it: the fetcher's own line
// (refresh.Record.String), after the timestamp when r has one.
func render(r Record) string {
	if r.Time.IsZero() {
		return r.Record.String()
	}
	return r.Time.Format(time.RFC3339Nano) + " " + r.Record.String()
}

func ms(d time.Duration) string { return itoa(d.Milliseconds()) }
func itoa(n int64) string       { return strconv.FormatInt(n, 10) }

// errBroken is how a fake stream breaks, as a connection reset would.
var errBroken = errors.New("connection reset by peer")

// fakeLogs plays the kubelet behind GET pods/log: one log per container
// instance, SinceTime cut to whole seconds as on the wire, follow streams
// that wait for more lines, and streams that break on cue.
type fakeLogs struct {
	mu      sync.Mutex
	pods    map[string]*fakeContainer
	opens   []fakeOpen
	changed chan struct{}
}

type fakeContainer struct {
	// instances holds each container instance's kubelet-stamped lines,
	// oldest first; the last one is the current instance.
	instances [][]string
	// breaks: the n-th follow stream breaks inside its breaks[n]-th line.
	breaks []int
	// crashes counts crash calls; a follow stream opened before one breaks.
	crashes int
	// gone: the pod was deleted; its follow streams end.
	gone bool
}

type fakeOpen struct {
	pod      string
	previous bool
	since    time.Time
}

func newFakeLogs() *fakeLogs {
	return &fakeLogs{pods: map[string]*fakeContainer{}, changed: make(chan struct{})}
}

func (f *fakeLogs) signal() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// add appends lines to the current instance of pod's fetcher.
func (f *fakeLogs) add(pod string, lines ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.pods[pod]
	if c == nil {
		c = &fakeContainer{instances: [][]string{nil}}
		f.pods[pod] = c
	}
	c.instances[len(c.instances)-1] = append(c.instances[len(c.instances)-1], lines...)
	f.signal()
}

// breakAt makes pod's next follow streams break inside their n-th lines.
func (f *fakeLogs) breakAt(pod string, n ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods[pod].breaks = append(f.pods[pod].breaks, n...)
}

// crash breaks pod's open streams first, then ends its current instance
// with lastWords, which no open stream sees, and starts a new instance.
func (f *fakeLogs) crash(pod string, lastWords, next []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.pods[pod]
	c.crashes++
	c.instances[len(c.instances)-1] = append(c.instances[len(c.instances)-1], lastWords...)
	c.instances = append(c.instances, next)
	f.signal()
}

// remove deletes pod's logs, as the kubelet does with the pod: its follow
// streams end and it cannot be opened again.
func (f *fakeLogs) remove(pod string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods[pod].gone = true
	delete(f.pods, pod)
	f.signal()
}

func (f *fakeLogs) opened() []fakeOpen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.opens)
}

func (f *fakeLogs) Open(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	pod := namespace + "/" + name
	f.mu.Lock()
	defer f.mu.Unlock()
	if opts.Container != fetcherContainer || !opts.Timestamps || opts.SinceTime == nil || opts.Follow == opts.Previous {
		return nil, fmt.Errorf("unexpected options %+v", opts)
	}
	since := opts.SinceTime.Time.Truncate(time.Second)
	f.opens = append(f.opens, fakeOpen{pod: pod, previous: opts.Previous, since: since})
	c := f.pods[pod]
	if c == nil {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name)
	}
	inst := len(c.instances) - 1
	if opts.Previous {
		inst--
		if inst < 0 {
			return nil, apierrors.NewBadRequest(`previous terminated container "aether-fetcher" not found`)
		}
	}
	breakAt := -1
	if opts.Follow && len(c.breaks) > 0 {
		breakAt, c.breaks = c.breaks[0], c.breaks[1:]
	}
	pr, pw := io.Pipe()
	go f.serve(ctx, pw, c, inst, since, opts.Follow, breakAt, c.crashes)
	return pr, nil
}

// serve writes instance inst of c to w from since.
func (f *fakeLogs) serve(ctx context.Context, w *io.PipeWriter, c *fakeContainer, inst int, since time.Time, follow bool, breakAt, crashes int) {
	sent := 0
	for {
		f.mu.Lock()
		if follow && c.crashes != crashes {
			f.mu.Unlock()
			w.CloseWithError(errBroken)
			return
		}
		var lines []string
		for _, l := range c.instances[inst] {
			if ts, _ := splitTimestamp(l); !ts.Before(since) {
				lines = append(lines, l)
			}
		}
		ended := !follow || inst < len(c.instances)-1 || c.gone
		changed := f.changed
		f.mu.Unlock()

		for ; sent < len(lines); sent++ {
			if sent == breakAt {
				_, _ = io.WriteString(w, lines[sent][:len(lines[sent])/2])
				w.CloseWithError(errBroken)
				return
			}
			if _, err := io.WriteString(w, lines[sent]+"\n"); err != nil {
				return
			}
		}
		if ended {
			w.Close()
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			w.CloseWithError(ctx.Err())
			return
		}
	}
}
