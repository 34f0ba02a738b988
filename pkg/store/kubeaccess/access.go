package kubeaccess

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/aether-dev/aether-devhot/pkg/store"
)

// Access is store.Access on a cluster: Reviewer for reads, Deployments for
// uploads, readiness and pins.
type Access struct {
	*Reviewer
	*Deployments
	md metadata.Interface
}

// New connects to the API server of cfg. audience is the one the fetchers'
// store tokens are minted for.
func New(cfg *rest.Config, audience string) (*Access, error) {
	if audience == "" {
		return nil, fmt.Errorf("no audience: name the one the fetchers' store tokens are minted for (the webhook's --store-url)")
	}
	cfg = rest.CopyConfig(cfg)
	// Reviews come in bursts, one pair per fetcher and push.
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Access{Reviewer: NewReviewer(cs, audience), Deployments: NewDeployments(), md: md}, nil
}

// Run watches the labelled Deployments until ctx ends.
func (a *Access) Run(ctx context.Context) error { return a.Deployments.Watch(ctx, a.md) }

var _ store.Access = (*Access)(nil)
