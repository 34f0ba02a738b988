package kubeaccess

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/store"
)

// DefaultAnnounceWait is how long an upload waits for its Deployment to
// ask for it: kubectl devhot push uploads right after it patches
// aether.dev/upload-digest, and the store's watch sees that patch a few
// milliseconds later.
const DefaultAnnounceWait = 3 * time.Second

// Deployments knows, for every Deployment labelled aether.dev/dev-hot=true,
// the digests it asks for: aether.dev/digest and aether.dev/upload-digest.
// It authorizes uploads of those digests and pins their blobs.
type Deployments struct {
	announceWait time.Duration
	synced       atomic.Bool

	mu      sync.Mutex
	asks    map[name][2]string // digest hex, upload-digest hex
	refs    map[blob]int       // how many Deployments ask for each blob
	changed chan struct{}      // closed and replaced on every change
}

type name struct{ ns, name string }
type blob struct{ ns, hex string }

// NewDeployments returns an empty index, not ready until MarkSynced.
func NewDeployments() *Deployments {
	return &Deployments{
		announceWait: DefaultAnnounceWait,
		asks:         map[name][2]string{},
		refs:         map[blob]int{},
		changed:      make(chan struct{}),
	}
}

// Set records what Deployment ns/n asks for, from its annotations.
// Values that are not digests ask for nothing.
func (d *Deployments) Set(ns, n string, ann map[string]string) {
	var want [2]string
	for i, k := range []string{annotations.Digest, annotations.UploadDigest} {
		if v := ann[k]; digest.Valid(v) {
			want[i] = strings.TrimPrefix(v, digest.Prefix)
		}
	}
	d.update(name{ns, n}, want, true)
}

// Delete forgets Deployment ns/n: deleted, or no longer labelled.
func (d *Deployments) Delete(ns, n string) { d.update(name{ns, n}, [2]string{}, false) }

func (d *Deployments) update(k name, want [2]string, present bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, had := d.asks[k]
	if had == present && old == want {
		return
	}
	for _, h := range old {
		if h != "" {
			if d.refs[blob{k.ns, h}]--; d.refs[blob{k.ns, h}] <= 0 {
				delete(d.refs, blob{k.ns, h})
			}
		}
	}
	delete(d.asks, k)
	if present {
		d.asks[k] = want
		for _, h := range want {
			if h != "" {
				d.refs[blob{k.ns, h}]++
			}
		}
	}
	close(d.changed)
	d.changed = make(chan struct{})
}

// MarkSynced says the index holds every labelled Deployment.
func (d *Deployments) MarkSynced() { d.synced.Store(true) }

// Ready implements store.Access: uploads and eviction wait until every
// labelled Deployment is known, or a pinned blob could be evicted.
func (d *Deployments) Ready() bool { return d.synced.Load() }

// Pinned reports whether a labelled Deployment of namespace ns asks for
// hex: the store never evicts such a blob (store.WithPins).
func (d *Deployments) Pinned(ns, hex string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refs[blob{ns, hex}] > 0
}

// AuthorizeUpload implements store.Access: yes while ref's Deployment asks
// for ref.Hex. It waits up to DefaultAnnounceWait for the watch to show a
// patch that the pusher has just made.
func (d *Deployments) AuthorizeUpload(ctx context.Context, ref store.BlobRef) error {
	timer := time.NewTimer(d.announceWait)
	defer timer.Stop()
	for {
		d.mu.Lock()
		want, changed := d.asks[name{ref.Namespace, ref.Deployment}], d.changed
		d.mu.Unlock()
		if ref.Hex == want[0] || ref.Hex == want[1] {
			return nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return store.Forbidden(fmt.Sprintf("deployment %s/%s does not ask for %s%s: the store takes a blob only while a Deployment "+
				"labelled %s=true names it in %s, which kubectl devhot push sets before it uploads, or in %s",
				ref.Namespace, ref.Deployment, digest.Prefix, ref.Hex, annotations.DevHot, annotations.UploadDigest, annotations.Digest))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Watch keeps d up to date with the labelled Deployments' metadata (not
// their specs: the store needs only annotations) until ctx ends, and marks
// it synced once the first list is in.
func (d *Deployments) Watch(ctx context.Context, client metadata.Interface) error {
	inf := metadatainformer.NewFilteredMetadataInformer(client, appsv1.SchemeGroupVersion.WithResource("deployments"),
		metav1.NamespaceAll, 0, cache.Indexers{}, func(o *metav1.ListOptions) {
			o.LabelSelector = annotations.DevHot + "=" + annotations.DevHotEnabled
		}).Informer()
	set := func(obj any) {
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			d.Set(m.Namespace, m.Name, m.Annotations)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
				d.Delete(m.Namespace, m.Name)
			}
		},
	}); err != nil {
		return err
	}
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			d.MarkSynced()
		}
	}()
	inf.Run(ctx.Done())
	return nil
}
