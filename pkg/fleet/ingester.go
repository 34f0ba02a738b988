package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Defaults of WithBackoff.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
)

// maxStreams bounds the log streams open at once. A follow stream holds its
// slot for as long as its fetcher runs, so fetchers beyond the bound wait
// for one to stop; their lines are read then, as long as the kubelet still
// has them.
const maxStreams = 100

// maxLine is far above any fetcher line; longer lines are cut rather than
// held in memory.
const maxLine = 64 << 10

// Ingester tails the fetcher logs of dev-hot pods and turns their markers
// into the fleet Metrics. It is a controller-runtime manager.Runnable that
// runs on the leader only, so that the replicas' counters do not add up to
// a multiple of the truth.
type Ingester struct {
	client  kubernetes.Interface
	logs    LogSource
	metrics *Metrics
	log     logr.Logger

	minBackoff, maxBackoff time.Duration
	now                    func() time.Time

	// slots bounds the open log streams.
	slots   chan struct{}
	started atomic.Bool
	pods    cache.Indexer
	wg      sync.WaitGroup

	mu       sync.Mutex
	tails    map[types.UID]*tail
	since    time.Time
	stopping bool
}

// Option configures an Ingester.
type Option func(*Ingester)

// WithLogSource replaces the API server as the source of log streams; tests
// use it to script streams.
func WithLogSource(s LogSource) Option { return func(i *Ingester) { i.logs = s } }

// WithBackoff sets the bounds of the jittered, doubling delay before a
// stream that broke or ended is opened again (DefaultMinBackoff,
// DefaultMaxBackoff).
func WithBackoff(minDelay, maxDelay time.Duration) Option {
	return func(i *Ingester) { i.minBackoff, i.maxBackoff = minDelay, maxDelay }
}

// withClock is for tests that pin the moment from which lines count.
func withClock(now func() time.Time) Option { return func(i *Ingester) { i.now = now } }

// New builds an Ingester that watches pods through client and registers the
// fleet Metrics on reg; the manager passes controller-runtime's
// metrics.Registry, and adds the Ingester only when fleet metrics are
// enabled, since only then does it need the cluster-wide RBAC of the
// package doc. Log lines count from the moment Start is called.
func New(client kubernetes.Interface, reg prometheus.Registerer, log logr.Logger, opts ...Option) (*Ingester, error) {
	i := &Ingester{
		client:     client,
		log:        log,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
		now:        time.Now,
		tails:      map[types.UID]*tail{},
	}
	for _, o := range opts {
		o(i)
	}
	switch {
	case client == nil:
		return nil, errors.New("fleet: a Kubernetes client is required")
	case i.minBackoff <= 0 || i.maxBackoff < i.minBackoff:
		return nil, fmt.Errorf("fleet: backoff bounds %s..%s are not increasing from above 0", i.minBackoff, i.maxBackoff)
	}
	if i.logs == nil {
		i.logs = PodLogs{Client: client}
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	i.metrics = m
	i.slots = make(chan struct{}, maxStreams)
	return i, nil
}

// NeedLeaderElection is true: every replica tailing the same logs would
// export the same counts once per replica.
func (i *Ingester) NeedLeaderElection() bool { return true }

// Start watches pods until ctx ends, keeping one tail per running fetcher,
// and returns once every stream is closed. Lines stamped before Start are
// not counted: a previous leader counted them in its own process. An
// Ingester starts once.
func (i *Ingester) Start(ctx context.Context) error {
	if !i.started.CompareAndSwap(false, true) {
		return errors.New("fleet: the Ingester was started already")
	}
	i.mu.Lock()
	i.since = i.now()
	i.mu.Unlock()

	factory := informers.NewSharedInformerFactoryWithOptions(i.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = activePods }))
	defer factory.Shutdown()
	informer := factory.Core().V1().Pods().Informer()
	if err := informer.SetTransform(slimPod); err != nil {
		return err
	}
	i.pods = informer.GetIndexer()
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { i.changed(ctx, obj) },
		UpdateFunc: func(_, obj any) { i.changed(ctx, obj) },
		DeleteFunc: i.deleted,
	})
	if err != nil {
		return err
	}
	factory.StartWithContext(ctx)
	i.log.Info("ingesting fetcher logs", "from", i.since)
	<-ctx.Done()

	i.mu.Lock()
	i.stopping = true
	i.mu.Unlock()
	i.wg.Wait()
	return nil
}

// changed starts or wakes the tail of a pod that was added or updated; the
// tail reads the pod's state from the informer's store itself.
func (i *Ingester) changed(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	st, ok := fetcherOf(pod)
	if ok {
		i.metrics.Warm(st.namespace)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	t := i.tails[pod.UID]
	switch {
	case i.stopping:
	case t == nil && ok:
		t = &tail{uid: pod.UID, namespace: pod.Namespace, name: pod.Name, cur: newCursor(i.since), wake: make(chan struct{}, 1)}
		i.tails[pod.UID] = t
		i.launch(ctx, t)
	case t == nil:
	case t.running:
		t.poke()
	case ok:
		// A stopped tail kept its cursor: it resumes without counting again.
		i.launch(ctx, t)
	}
}

// deleted wakes the tail of a deleted pod, which ends once it has read what
// the kubelet still sends, or forgets the stopped tail's cursor.
func (i *Ingester) deleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	switch t := i.tails[pod.UID]; {
	case t == nil:
	case t.running:
		t.poke()
	default:
		delete(i.tails, t.uid)
	}
}

// launch starts t's goroutine; i.mu is held.
func (i *Ingester) launch(ctx context.Context, t *tail) {
	t.running = true
	i.wg.Go(func() { i.run(ctx, t) })
}

// state is the fetcher's state in the store, false when t should stop.
func (i *Ingester) state(t *tail) (fetcherState, bool) {
	st, ok, _ := i.lookup(t)
	return st, ok
}

// lookup finds t's pod in the store: ok when it is a dev-hot pod with a
// fetcher, exists when a pod of t's UID is there at all.
func (i *Ingester) lookup(t *tail) (st fetcherState, ok, exists bool) {
	obj, found, err := i.pods.GetByKey(t.namespace + "/" + t.name)
	if err != nil || !found {
		return fetcherState{}, false, false
	}
	pod, isPod := obj.(*corev1.Pod)
	if !isPod || pod.UID != t.uid {
		return fetcherState{}, false, false
	}
	st, ok = fetcherOf(pod)
	return st, ok, true
}

// done decides under i.mu whether t's goroutine ends, so that it cannot
// race a pod event that would have restarted it: the store is updated before
// the event is delivered, and the event handler takes i.mu too. A tail whose
// pod still exists keeps its cursor, so that it resumes without counting
// again should the pod qualify again.
func (i *Ingester) done(ctx context.Context, t *tail) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	_, ok, exists := i.lookup(t)
	if ok && ctx.Err() == nil {
		return false
	}
	t.running = false
	if !exists {
		delete(i.tails, t.uid)
	}
	return true
}
