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
	up.OfFiles, up.OfParts = r.Count, len(r.Parts)
	fmt.Fprintln(p.out, up)
	return nil
}
