package mutate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
)

// Path is where the webhook server serves Handler.
const Path = "/mutate-apps-v1-deployment"

var deploymentKind = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}

// Handler is the admission edge around Deployment: it decodes the review,
// calls Deployment and answers with the JSON patch from Patch. The HTTP concerns (body
// limit, Content-Type, panics, the AdmissionReview envelope) are
// controller-runtime's admission.Webhook.
type Handler struct {
	Options Options
	// Images, when set, gives each request the image lookups bound to its
	// context, so that none outlives the webhook's timeout; Options.Images
	// serves otherwise.
	Images func(ctx context.Context) imageconfig.Source
	// LookupTimeout, when set, bounds one request's lookups.
	LookupTimeout time.Duration
	// Metrics, when set, counts the reviews.
	Metrics *Metrics
}

var _ admission.Handler = (*Handler)(nil)

// Handle implements admission.Handler. Anything but a CREATE or UPDATE of
// an apps/v1 Deployment is allowed untouched (rule 1).
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Kind.Kind == "" {
		return admission.Errored(http.StatusBadRequest, errors.New("aether-devhot: the AdmissionReview has no request"))
	}
	if req.Kind.Group != deploymentKind.Group || req.Kind.Kind != deploymentKind.Kind || req.Kind.Version != deploymentKind.Version {
		return admission.Allowed(fmt.Sprintf("aether-devhot mutates only apps/v1 Deployments, not %s", req.Kind.String()))
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("aether-devhot mutates only on CREATE and UPDATE")
	}
	if len(req.Object.Raw) == 0 {
		return admission.Errored(http.StatusBadRequest, errors.New("aether-devhot: the request has no object"))
	}
	var in appsv1.Deployment
	if err := json.Unmarshal(req.Object.Raw, &in); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("aether-devhot: the object is not an apps/v1 Deployment: %w", err))
	}
	o := h.Options
	if h.Images != nil {
		if h.LookupTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, h.LookupTimeout)
			defer cancel()
		}
		o.Images = h.Images(ctx)
	}
	out, outcome, warnings, err := Deployment(&in, o)
	if den := (*Denial)(nil); errors.As(err, &den) {
		h.Metrics.count(resultDenied, den)
		return admission.Denied(den.Error())
	} else if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	patches, err := Patch(&in, out)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	resp := admission.Patched("", patches...)
	switch {
	case len(resp.Patches) == 0:
		h.Metrics.count(resultNoop, nil)
	case outcome == Reverted:
		h.Metrics.count(resultReverted, nil)
	default:
		h.Metrics.count(resultInjected, nil)
	}
	return resp.WithWarnings(warnings...)
}
