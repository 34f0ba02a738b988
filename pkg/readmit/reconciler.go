// Package readmit heals Deployments that were admitted while the webhook
// was down. With failurePolicy Ignore such a Deployment keeps its label but
// gets no fetcher; this reconciler sees the label without the
// aether.dev/injected record, says so in a Warning Event, and sends the
// Deployment through admission again with an empty patch, so the webhook
// injects it as soon as it is back.
package readmit

import (
	"context"
	"net/http"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

// RetryAfter is how soon a Deployment that is still not injected is tried
// again: the webhook may still be unreachable.
const RetryAfter = 5 * time.Second

// Reconciler re-admits labelled Deployments that carry no injection record.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// WebhookStarted reports whether this manager's webhook server serves;
	// re-admitting before it does would be admitted unmutated again.
	WebhookStarted healthz.Checker
}

// SetupWithManager registers the reconciler for labelled Deployments.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("devhot-readmit").
		For(&appsv1.Deployment{}, builder.WithPredicates(predicate.NewPredicateFuncs(needsInjection))).
		Complete(r)
}

func needsInjection(o client.Object) bool {
	_, injected := o.GetAnnotations()[annotations.Injected]
	return o.GetLabels()[annotations.DevHot] == annotations.DevHotEnabled && !injected && o.GetDeletionTimestamp() == nil
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var d appsv1.Deployment
	if err := r.Client.Get(ctx, req.NamespacedName, &d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !needsInjection(&d) {
		return ctrl.Result{}, nil
	}
	if r.WebhookStarted != nil {
		if err := r.WebhookStarted(&http.Request{}); err != nil {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
	}
	r.Recorder.Eventf(&d, nil, corev1.EventTypeWarning, "NotInjected", "Readmit",
		"labelled %s=true but admitted without the fetcher (the webhook was unreachable and failurePolicy is Ignore); sending it through admission again",
		annotations.DevHot)
	// An empty merge patch changes nothing itself, but the API server runs
	// mutating admission on it, and the webhook's patch is then stored.
	if err := r.Client.Patch(ctx, &d, client.RawPatch(types.MergePatchType, []byte("{}"))); err != nil {
		return ctrl.Result{}, err
	}
	if needsInjection(&d) {
		return ctrl.Result{RequeueAfter: RetryAfter}, nil
	}
	return ctrl.Result{}, nil
}
