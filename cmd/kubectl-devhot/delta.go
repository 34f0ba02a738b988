package main

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/aether-dev/aether-devhot/pkg/pack"
	"github.com/aether-dev/aether-devhot/pkg/store"
)

// uploadDelta puts the delta release r in the store (store.PutRelease):
// the root, then only the parts and files the store lacks.
func (p *pusher) uploadDelta(ctx context.Context, d *appsv1.Deployment, r *pack.Release, ref store.BlobRef) error {
	if err := p.announce(ctx, d, r.Digest); err != nil {
		return err
	}
	p.store.Progress = uploadProgress(p.out)
	up, err := p.store.PutRelease(ctx, ref, r.Root, r.Open)
	if err != nil {
		return p.storeError(fmt.Errorf("%w\n(a file that changed after it was hashed has another sha256: push again)", err))
	}
	fmt.Fprintf(p.out, "uploaded %d of %d files and %d of %d parts, %d bytes with the root\n", up.Files, r.Count, up.Parts, len(r.Parts), up.Bytes)
	return nil
}
