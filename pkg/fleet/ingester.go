package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
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

// MaxStreams bounds the log streams open at once. A follow stream holds its
// slot for as long as its fetcher runs, so fetchers beyond the bound wait
// for one to stop; their lines are read then, as long as the kubelet still
// has them.
const MaxStreams = 100

// DefaultStreamsPerNamespace is WithStreamsPerNamespace's default: the
// streams of one namespace take at most a tenth of MaxStreams, so that the
// fetchers of one namespace, however many, cannot keep every other
// namespace's from being read.
const DefaultStreamsPerNamespace = 10

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

	// slots bounds the open log streams; nsSlots, by namespace, those of
	// each namespace, perNamespace each.
	slots        chan struct{}
	perNamespace int
	started      atomic.Bool
	pods         cache.Indexer
	owners       owners
	wg           sync.WaitGroup

	mu       sync.Mutex
	tails    map[types.UID]*tail
	since    time.Time
	stopping bool
	nsSlots  map[string]chan struct{}

	// noteMu guards what is noted about pods and namespaces; it may be
	// taken with mu held, never the other way round.
	noteMu sync.Mutex
	// ignored holds the pods that look like dev-hot pods but that no
	// injected Deployment owns, by UID, with their namespace.
	ignored map[types.UID]string
	// told records the namespaces logged about once, by what was said.
	told map[string]bool
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

// WithStreamsPerNamespace bounds the log streams of one namespace's
// fetchers to n, from 1 to MaxStreams (DefaultStreamsPerNamespace).
func WithStreamsPerNamespace(n int) Option { return func(i *Ingester) { i.perNamespace = n } }

// withClock is for tests that pin the moment from which lines count.
func withClock(now func() time.Time) Option { return func(i *Ingester) { i.now = now } }

// New builds an Ingester that watches pods through client and registers the
// fleet Metrics on reg; the manager passes controller-runtime's
// metrics.Registry, and adds the Ingester only when fleet metrics are
// enabled, since only then does it need the cluster-wide RBAC of the
// package doc. Log lines count from the moment Start is called.
func New(client kubernetes.Interface, reg prometheus.Registerer, log logr.Logger, opts ...Option) (*Ingester, error) {
	i := &Ingester{
		client:       client,
		log:          log,
		minBackoff:   DefaultMinBackoff,
		maxBackoff:   DefaultMaxBackoff,
		now:          time.Now,
		perNamespace: DefaultStreamsPerNamespace,
		tails:        map[types.UID]*tail{},
		nsSlots:      map[string]chan struct{}{},
		ignored:      map[types.UID]string{},
		told:         map[string]bool{},
	}
	for _, o := range opts {
		o(i)
	}
	switch {
	case client == nil:
		return nil, errors.New("fleet: a Kubernetes client is required")
	case i.minBackoff <= 0 || i.maxBackoff < i.minBackoff:
		return nil, fmt.Errorf("fleet: backoff bounds %s..%s are not increasing from above 0", i.minBackoff, i.maxBackoff)
	case i.perNamespace < 1 || i.perNamespace > MaxStreams:
		return nil, fmt.Errorf("fleet: %d streams per namespace: want 1 to %d", i.perNamespace, MaxStreams)
	}
	if i.logs == nil {
		i.logs = PodLogs{Client: client}
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	i.metrics = m
	i.slots = make(chan struct{}, MaxStreams)
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
	// Owners have no phase to select on: a factory of their own.
	ownerFactory := informers.NewSharedInformerFactory(i.client, 0)
	defer ownerFactory.Shutdown()

	informer := factory.Core().V1().Pods().Informer()
	rsInformer := ownerFactory.Apps().V1().ReplicaSets().Informer()
	dInformer := ownerFactory.Apps().V1().Deployments().Informer()
	for _, s := range []struct {
		inf       cache.SharedIndexInformer
		transform cache.TransformFunc
		indexed   bool
	}{{informer, slimPod, true}, {rsInformer, slimReplicaSet, true}, {dInformer, slimDeployment, false}} {
		if err := s.inf.SetTransform(s.transform); err != nil {
			return err
		}
		if s.indexed {
			if err := s.inf.AddIndexers(cache.Indexers{ownerIndex: byController}); err != nil {
				return err
			}
		}
	}
	i.pods = informer.GetIndexer()
	i.owners = owners{replicaSets: rsInformer.GetIndexer(), deployments: dInformer.GetIndexer()}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { i.changed(ctx, obj) },
		UpdateFunc: func(_, obj any) { i.changed(ctx, obj) },
		DeleteFunc: i.deleted,
	}); err != nil {
		return err
	}
	// A pod may be seen before its owners: when they come, change or go,
	// the pods they own are looked at again.
	// A ReplicaSet's event looks at its pods; a Deployment's, at the pods
	// of its ReplicaSets.
	for _, h := range []struct {
		inf   cache.SharedIndexInformer
		owned func(any) []any
	}{
		{rsInformer, func(rs any) []any { return []any{rs} }},
		{dInformer, func(d any) []any { return ownedBy(i.owners.replicaSets, d) }},
	} {
		recheck := func(owner any) {
			for _, rs := range h.owned(owner) {
				for _, p := range ownedBy(i.pods, rs) {
					i.changed(ctx, p)
				}
			}
		}
		if _, err := h.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    recheck,
			UpdateFunc: func(_, obj any) { recheck(obj) },
			DeleteFunc: recheck,
		}); err != nil {
			return err
		}
	}
	ownerFactory.StartWithContext(ctx)
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
	st, ok := i.qualifies(pod)
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
	i.unignore(pod.UID)
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
	st, ok = i.qualifies(pod)
	return st, ok, true
}

// qualifies returns the fetcher's state in pod, false when pod is not a
// dev-hot pod with a fetcher that an injected Deployment owns. It keeps
// the count of the pods it ignores for want of that owner.
func (i *Ingester) qualifies(pod *corev1.Pod) (fetcherState, bool) {
	st, ok := fetcherOf(pod)
	owned := ok && i.owners.injected(pod)
	i.noteMu.Lock()
	defer i.noteMu.Unlock()
	switch _, was := i.ignored[pod.UID]; {
	case ok && !owned && !was:
		i.ignored[pod.UID] = pod.Namespace
		i.metrics.IgnoredPods.WithLabelValues(pod.Namespace).Inc()
		i.tellOnce("ignored", pod.Namespace, "ignoring pods with the dev-hot annotation and a fetcher that no injected Deployment owns (pod → ReplicaSet → Deployment with "+annotations.Injected+")",
			"pod", pod.Namespace+"/"+pod.Name, "metric", MetricIgnoredPods)
	case !(ok && !owned) && was:
		i.forget(pod.UID)
	}
	return st, owned
}

// unignore forgets a pod that was ignored, when it is deleted.
func (i *Ingester) unignore(uid types.UID) {
	i.noteMu.Lock()
	defer i.noteMu.Unlock()
	i.forget(uid)
}

// forget is unignore with noteMu held.
func (i *Ingester) forget(uid types.UID) {
	if ns, was := i.ignored[uid]; was {
		delete(i.ignored, uid)
		i.metrics.IgnoredPods.WithLabelValues(ns).Dec()
	}
}

// tellOnce logs msg the first time it is about namespace; noteMu is held.
func (i *Ingester) tellOnce(what, namespace, msg string, kv ...any) {
	if key := what + "/" + namespace; !i.told[key] {
		i.told[key] = true
		i.log.Info(msg, append([]any{"namespace", namespace}, kv...)...)
	}
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
