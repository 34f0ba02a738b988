package kubeaccess

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/aether-dev/aether-devhot/pkg/store"
)

// Defaults of Reviewer's cache.
const (
	// DefaultReviewTTL is how long a verdict on one token and Deployment
	// is reused: a fetcher downloads on every push, and two reviews per
	// download would add two API round trips to each. A revoked binding
	// or a deleted pod is honoured at most this late.
	DefaultReviewTTL = 10 * time.Second
	// maxCached bounds the cache, whatever tokens arrive.
	maxCached = 4096
)

// Reviewer authorizes readers: a TokenReview of the bearer token for the
// store's audience, then a SubjectAccessReview of `get` on the Deployment
// the blob was pushed for, as the token's user. Verdicts are cached for
// DefaultReviewTTL, refusals too, so that a client sending bad tokens
// costs the API server at most one review pair per token per TTL.
type Reviewer struct {
	client   kubernetes.Interface
	audience string
	ttl      time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]verdict
}

type verdict struct {
	err     error // nil or a *store.Denied
	expires time.Time
}

// NewReviewer reviews tokens with client for audience, which is what the
// fetchers' store tokens are minted for (the webhook's --store-url).
func NewReviewer(client kubernetes.Interface, audience string) *Reviewer {
	return &Reviewer{client: client, audience: audience, ttl: DefaultReviewTTL, now: time.Now, cache: map[[sha256.Size]byte]verdict{}}
}

// AuthorizeRead implements store.Access.
func (r *Reviewer) AuthorizeRead(ctx context.Context, token string, ref store.BlobRef) error {
	k := sha256.Sum256([]byte(token + "\x00" + ref.Namespace + "\x00" + ref.Deployment))
	now := r.now()
	r.mu.Lock()
	v, ok := r.cache[k]
	r.mu.Unlock()
	if ok && now.Before(v.expires) {
		return v.err
	}
	err := r.review(ctx, token, ref)
	if _, denied := err.(*store.Denied); err != nil && !denied {
		return err // the API server could not tell: ask again next time
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= maxCached {
		for k, v := range r.cache {
			if !now.Before(v.expires) {
				delete(r.cache, k)
			}
		}
		if len(r.cache) >= maxCached {
			clear(r.cache)
		}
	}
	r.cache[k] = verdict{err: err, expires: now.Add(r.ttl)}
	return err
}

func (r *Reviewer) review(ctx context.Context, token string, ref store.BlobRef) error {
	tr, err := r.client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{r.audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("TokenReview: %w", err)
	}
	if !tr.Status.Authenticated || !slices.Contains(tr.Status.Audiences, r.audience) {
		why := tr.Status.Error
		if why == "" {
			why = "not authenticated"
		}
		return store.Unauthorized(fmt.Sprintf("the store does not accept this token (%s): send a service-account token "+
			"with audience %q, the fetcher's AETHER_STORE_TOKEN_FILE", why, r.audience))
	}
	u := tr.Status.User
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := r.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ref.Namespace, Verb: "get", Group: "apps", Resource: "deployments", Name: ref.Deployment,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("SubjectAccessReview: %w", err)
	}
	if !sar.Status.Allowed {
		why := ""
		if sar.Status.Reason != "" {
			why = " (" + sar.Status.Reason + ")"
		}
		return store.Forbidden(fmt.Sprintf("%s may not get deployment %s/%s%s, which reading its blobs needs", u.Username, ref.Namespace, ref.Deployment, why))
	}
	return nil
}
