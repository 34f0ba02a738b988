package kubeaccess

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/aether-dev/aether-devhot/pkg/store"
)

// fakeAPI answers reviews as an API server would for two fetchers, of
// team-a/web and team-b/web, and counts them.
type fakeAPI struct {
	reviews, accessReviews int
	down                   bool
	lastAudiences          []string
	lastAttrs              *authorizationv1.ResourceAttributes
}

func (f *fakeAPI) client() *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.reviews++
		if f.down {
			return true, nil, errors.New("connection refused")
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		f.lastAudiences = tr.Spec.Audiences
		team, ok := strings.CutPrefix(tr.Spec.Token, "token-of-")
		if !ok || !strings.HasSuffix(tr.Spec.Audiences[0], "store") {
			tr.Status.Error = "invalid bearer token"
			return true, tr, nil
		}
		tr.Status.Authenticated = true
		tr.Status.Audiences = tr.Spec.Audiences
		tr.Status.User = authenticationv1.UserInfo{Username: "system:serviceaccount:" + team + ":web-devhot", Groups: []string{"system:serviceaccounts"}}
		return true, tr, nil
	})
	c.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.accessReviews++
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		f.lastAttrs = sar.Spec.ResourceAttributes
		ra := sar.Spec.ResourceAttributes
		sar.Status.Allowed = sar.Spec.User == "system:serviceaccount:"+ra.Namespace+":web-devhot" && ra.Name == "web" &&
			ra.Verb == "get" && ra.Group == "apps" && ra.Resource == "deployments"
		return true, sar, nil
	})
	return c
}

func TestReviewer(t *testing.T) {
	api := &fakeAPI{}
	r := NewReviewer(api.client(), "http://the-store")
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	ctx := context.Background()
	webA := store.BlobRef{Namespace: "team-a", Deployment: "web", Hex: hexA}
	tests := []struct {
		name         string
		token        string
		ref          store.BlobRef
		advance      time.Duration
		down         bool
		wantStatus   int // 0: allowed; -1: an error that is not a verdict
		wantReason   string
		wantAPICalls int // reviews + access reviews made by this call
	}{
		{"its own Deployment", "token-of-team-a", webA, 0, false, 0, "", 2},
		{"again: cached", "token-of-team-a", store.BlobRef{Namespace: "team-a", Deployment: "web", Hex: hexB}, 0, false, 0, "", 0},
		{"another namespace's Deployment", "token-of-team-b", webA, 0, false, 403, "system:serviceaccount:team-b:web-devhot may not get deployment team-a/web", 2},
		{"another Deployment", "token-of-team-a", store.BlobRef{Namespace: "team-a", Deployment: "api", Hex: hexA}, 0, false, 403, "may not get deployment team-a/api", 2},
		{"a forged token", "forged", webA, 0, false, 401, `does not accept this token (invalid bearer token): send a service-account token with audience "http://the-store"`, 1},
		{"the forged token again: its refusal is cached", "forged", webA, 0, false, 401, "invalid bearer token", 0},
		{"API server down", "token-of-team-b", store.BlobRef{Namespace: "team-b", Deployment: "web", Hex: hexA}, 0, true, -1, "connection refused", 1},
		{"API server back: the failure was not cached", "token-of-team-b", store.BlobRef{Namespace: "team-b", Deployment: "web", Hex: hexA}, 0, false, 0, "", 2},
		{"after the TTL it asks again", "token-of-team-a", webA, DefaultReviewTTL, false, 0, "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = now.Add(tt.advance)
			api.down = tt.down
			before := api.reviews + api.accessReviews
			err := r.AuthorizeRead(ctx, tt.token, tt.ref)
			var den *store.Denied
			switch {
			case tt.wantStatus == 0 && err != nil:
				t.Errorf("denied: %v", err)
			case tt.wantStatus > 0 && (!errors.As(err, &den) || den.Status != tt.wantStatus || !strings.Contains(den.Reason, tt.wantReason)):
				t.Errorf("got %v, want %d with %q", err, tt.wantStatus, tt.wantReason)
			case tt.wantStatus < 0 && (err == nil || errors.As(err, &den) || !strings.Contains(err.Error(), tt.wantReason)):
				t.Errorf("got %v, want an error with %q that is not a verdict", err, tt.wantReason)
			}
			if calls := api.reviews + api.accessReviews - before; calls != tt.wantAPICalls {
				t.Errorf("%d reviews, want %d", calls, tt.wantAPICalls)
			}
		})
	}
	if len(api.lastAudiences) != 1 || api.lastAudiences[0] != "http://the-store" {
		t.Errorf("TokenReview audiences %v, want the store's", api.lastAudiences)
	}
}
