package kubeaccess

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/store"
)

var (
	hexA = strings.Repeat("a", 64)
	hexB = strings.Repeat("b", 64)
	hexC = strings.Repeat("c", 64)
)

func ref(ns, name, hex string) store.BlobRef {
	return store.BlobRef{Namespace: ns, Deployment: name, Hex: hex}
}

func asks(current, upload string) map[string]string {
	m := map[string]string{}
	if current != "" {
		m[annotations.Digest] = "sha256:" + current
	}
	if upload != "" {
		m[annotations.UploadDigest] = "sha256:" + upload
	}
	return m
}

func TestDeployments(t *testing.T) {
	type op struct {
		del      bool
		ns, name string
		ann      map[string]string
	}
	tests := []struct {
		name       string
		ops        []op
		pinned     []blob
		notPinned  []blob
		uploadable []store.BlobRef
		refused    []store.BlobRef
	}{
		{"current and announced digests", []op{{false, "a", "web", asks(hexA, hexB)}},
			[]blob{{"a", hexA}, {"a", hexB}}, []blob{{"b", hexA}, {"a", hexC}},
			[]store.BlobRef{ref("a", "web", hexA), ref("a", "web", hexB)},
			[]store.BlobRef{ref("a", "api", hexA), ref("b", "web", hexA), ref("a", "web", hexC)}},
		{"a new digest unpins the old one", []op{{false, "a", "web", asks(hexA, "")}, {false, "a", "web", asks(hexB, "")}},
			[]blob{{"a", hexB}}, []blob{{"a", hexA}}, nil, []store.BlobRef{ref("a", "web", hexA)}},
		{"two Deployments ask for one blob", []op{{false, "a", "web", asks(hexA, "")}, {false, "a", "api", asks(hexA, "")}, {true, "a", "web", nil}},
			[]blob{{"a", hexA}}, nil, []store.BlobRef{ref("a", "api", hexA)}, []store.BlobRef{ref("a", "web", hexA)}},
		{"deleted or unlabelled", []op{{false, "a", "web", asks(hexA, hexB)}, {true, "a", "web", nil}},
			nil, []blob{{"a", hexA}, {"a", hexB}}, nil, []store.BlobRef{ref("a", "web", hexA)}},
		{"values that are not digests ask for nothing", []op{{false, "a", "web", map[string]string{
			annotations.Digest: hexA, annotations.UploadDigest: "sha256:" + strings.ToUpper(hexB)}}},
			nil, []blob{{"a", hexA}, {"a", strings.ToUpper(hexB)}}, nil, []store.BlobRef{ref("a", "web", hexA)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDeployments()
			d.announceWait = 10 * time.Millisecond
			for _, o := range tt.ops {
				if o.del {
					d.Delete(o.ns, o.name)
				} else {
					d.Set(o.ns, o.name, o.ann)
				}
			}
			for _, b := range tt.pinned {
				if !d.Pinned(b.ns, b.hex) {
					t.Errorf("%v not pinned", b)
				}
			}
			for _, b := range tt.notPinned {
				if d.Pinned(b.ns, b.hex) {
					t.Errorf("%v pinned", b)
				}
			}
			for _, r := range tt.uploadable {
				if err := d.AuthorizeUpload(context.Background(), r); err != nil {
					t.Errorf("upload of %s: %v", r, err)
				}
			}
			for _, r := range tt.refused {
				err := d.AuthorizeUpload(context.Background(), r)
				var den *store.Denied
				if !errors.As(err, &den) || den.Status != 403 || !strings.Contains(den.Reason, annotations.UploadDigest) {
					t.Errorf("upload of %s: %v, want 403 naming %s", r, err, annotations.UploadDigest)
				}
			}
		})
	}
}

// TestAuthorizeUploadWaitsForTheWatch: an upload that arrives just before
// the watch shows the pusher's patch is let in once it does.
func TestAuthorizeUploadWaitsForTheWatch(t *testing.T) {
	d := NewDeployments()
	d.Set("a", "web", asks(hexA, ""))
	go func() {
		time.Sleep(100 * time.Millisecond)
		d.Set("a", "other", asks(hexC, "")) // unrelated news first
		time.Sleep(100 * time.Millisecond)
		d.Set("a", "web", asks(hexA, hexB))
	}()
	start := time.Now()
	if err := d.AuthorizeUpload(context.Background(), store.BlobRef{Namespace: "a", Deployment: "web", Hex: hexB}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.AuthorizeUpload(ctx, store.BlobRef{Namespace: "a", Deployment: "web", Hex: hexC}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
