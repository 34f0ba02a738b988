package fetcher

import (
	"context"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	"k8s.io/client-go/tools/cache"
)

// observation is one reading of the Deployment.
type observation struct {
	desired Desired
	// ref is where Events go.
	ref *corev1.ObjectReference
	// seen is when this digest was first observed: latency starts there.
	seen time.Time
}

// inbox is a single slot, newest wins: readings that arrive while the loop
// is busy collapse into the latest one.
type inbox struct {
	mu     sync.Mutex
	latest observation
	full   bool
	ready  chan struct{}
}

func newInbox() *inbox {
	return &inbox{ready: make(chan struct{}, 1)}
}

// put replaces the slot's reading, keeping the first-seen time of a target
// that is seen again (resyncs, polls) so that latency is not reset.
func (b *inbox) put(d *appsv1.Deployment, now time.Time) {
	o := observation{
		desired: DesiredOf(d.Annotations),
		ref: &corev1.ObjectReference{
			Kind:       "Deployment",
			APIVersion: "apps/v1",
			Namespace:  d.Namespace,
			Name:       d.Name,
			UID:        d.UID,
		},
		seen: now,
	}
	b.mu.Lock()
	if b.full && b.latest.desired.key() == o.desired.key() {
		o.seen = b.latest.seen
	}
	b.latest, b.full = o, true
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// get returns the latest reading; ok is false until the first one.
func (b *inbox) get() (o observation, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.latest, b.full
}

// watch feeds the inbox from an informer on the one Deployment. The
// reflector re-lists after watch expiry, 410 Gone and API server restarts;
// the resync re-delivers the cached object every interval at no cost to the
// API server. The field selector is not only thrift: the Role allows nothing
// but this one name.
func (f *Fetcher) watch(ctx context.Context) {
	inf := appsinformers.NewFilteredDeploymentInformer(f.client, f.cfg.PodNamespace, f.cfg.FetchInterval, cache.Indexers{},
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", f.cfg.Deployment).String()
		})
	onDeployment := func(obj any) {
		if d, ok := obj.(*appsv1.Deployment); ok && d.Name == f.cfg.Deployment {
			f.inbox.put(d, time.Now())
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onDeployment,
		UpdateFunc: func(_, obj any) { onDeployment(obj) },
		DeleteFunc: func(any) { f.log.Warn("deployment deleted", "namespace", f.cfg.PodNamespace, "name", f.cfg.Deployment) },
	}); err != nil {
		f.log.Error("cannot watch the deployment", "error", err)
		return
	}
	inf.RunWithContext(ctx)
}

// poll feeds the inbox from a GET every interval.
func (f *Fetcher) poll(ctx context.Context) {
	t := time.NewTicker(f.cfg.FetchInterval)
	defer t.Stop()
	lastErr := ""
	for {
		d, err := f.client.AppsV1().Deployments(f.cfg.PodNamespace).Get(ctx, f.cfg.Deployment, metav1.GetOptions{})
		switch {
		case err == nil:
			lastErr = ""
			f.inbox.put(d, time.Now())
		case ctx.Err() != nil:
			return
		case err.Error() != lastErr:
			// Logged once per distinct error: a Deployment that is gone or
			// forbidden would otherwise fill the log every interval.
			lastErr = err.Error()
			f.log.Warn("cannot get the deployment", "namespace", f.cfg.PodNamespace, "name", f.cfg.Deployment, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
