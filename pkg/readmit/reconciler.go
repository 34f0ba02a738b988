// Package readmit heals Deployments that admission could not reach. With
// failurePolicy Ignore the webhook may miss two changes:
//
//   - a labelled Deployment admitted while the webhook was down has no
//     fetcher: this reconciler sees the label without the
//     aether.dev/injected record, says so in a Warning Event, and sends the
//     Deployment through admission again with an empty patch, so the webhook
//     injects it as soon as it is back. Until it does, the attempts back off
//     (Backoff); in a namespace the webhook never sees (Excluded) it gives
//     up at once and says why.
//   - a Deployment unlabelled while the webhook was down keeps the fetcher
//     and its service account, but neither the old nor the new object has
//     the label, so the webhook is never asked again: this reconciler
//     reverts it itself, with the webhook's own pure revert
//     (mutate.Deployment) and a JSON patch that tests the resourceVersion it
//     was computed from.
package readmit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/backoff"
	"github.com/aether-dev/aether-devhot/pkg/mutate"
)

// DefaultBackoff spaces out the re-admissions of a Deployment that is still
// not injected: the webhook may be unreachable for a while, and each try
// is a write and an Event. The cap keeps a fixed webhook noticed within
// minutes.
var DefaultBackoff = backoff.Backoff{Base: 5 * time.Second, Max: 2 * time.Minute, Equal: true}

// Reconciler re-admits labelled Deployments that carry no injection record
// and reverts unlabelled ones that still carry it.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// WebhookStarted reports whether this manager's webhook server serves;
	// re-admitting before it does would be admitted unmutated again.
	WebhookStarted healthz.Checker
	// Excluded are the namespaces the webhook's namespaceSelector leaves
	// out (the chart: kube-system, its own, webhook.excludeNamespaces). A
	// labelled Deployment there is never injected, so it is not re-admitted.
	Excluded []string
	// Backoff spaces out re-admissions; the zero value is DefaultBackoff.
	Backoff backoff.Backoff

	failures backoff.Failures[types.NamespacedName]
}

// Action is what a Deployment needs from this reconciler.
type Action string

// Actions of Decide.
const (
	// None: injected and labelled, or neither.
	None Action = "none"
	// Readmit: labelled but without the record; send it through admission.
	Readmit Action = "readmit"
	// Excluded: labelled without the record, in a namespace the webhook
	// never sees; say so once and give up.
	Excluded Action = "excluded"
	// Revert: the record without the label; undo the injection here.
	Revert Action = "revert"
)

// Decide says what d needs, with excluded the namespaces the webhook never
// sees. It is pure, so a table test covers every case.
func Decide(d *appsv1.Deployment, excluded []string) Action {
	if d.DeletionTimestamp != nil {
		return None
	}
	_, injected := d.Annotations[annotations.Injected]
	labelled := d.Labels[annotations.DevHot] == annotations.DevHotEnabled
	switch {
	case labelled && !injected && slices.Contains(excluded, d.Namespace):
		return Excluded
	case labelled && !injected:
		return Readmit
	case !labelled && injected:
		return Revert
	}
	return None
}

// SetupWithManager registers the reconciler. It sees a Deployment when the
// old or the new object needs it, so that it also sees the end of a need
// and forgets its count of failures.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	needs := func(o client.Object) bool {
		d, ok := o.(*appsv1.Deployment)
		return ok && Decide(d, r.Excluded) != None
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("devhot-readmit").
		For(&appsv1.Deployment{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(e event.CreateEvent) bool { return needs(e.Object) },
			UpdateFunc:  func(e event.UpdateEvent) bool { return needs(e.ObjectOld) || needs(e.ObjectNew) },
			DeleteFunc:  func(e event.DeleteEvent) bool { return needs(e.Object) },
			GenericFunc: func(e event.GenericEvent) bool { return needs(e.Object) },
		})).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var d appsv1.Deployment
	if err := r.Client.Get(ctx, req.NamespacedName, &d); err != nil {
		r.failures.Forget(req.NamespacedName)
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	switch Decide(&d, r.Excluded) {
	case Excluded:
		r.failures.Forget(req.NamespacedName)
		r.Recorder.Eventf(&d, nil, corev1.EventTypeWarning, "NotInjected", "Readmit",
			"labelled %s=true in namespace %s, which the webhook never sees (excluded: %v): it gets no fetcher. Remove the label, or move the Deployment to another namespace",
			annotations.DevHot, d.Namespace, r.Excluded)
		return ctrl.Result{}, nil
	case Readmit:
		return r.readmit(ctx, &d)
	case Revert:
		r.failures.Forget(req.NamespacedName)
		return ctrl.Result{}, r.revert(ctx, &d)
	}
	r.failures.Forget(req.NamespacedName)
	return ctrl.Result{}, nil
}

func (r *Reconciler) readmit(ctx context.Context, d *appsv1.Deployment) (ctrl.Result, error) {
	if r.WebhookStarted != nil {
		if err := r.WebhookStarted(&http.Request{}); err != nil {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
	}
	key := client.ObjectKeyFromObject(d)
	r.Recorder.Eventf(d, nil, corev1.EventTypeWarning, "NotInjected", "Readmit",
		"labelled %s=true but admitted without the fetcher (the webhook was unreachable and failurePolicy is Ignore); sending it through admission again",
		annotations.DevHot)
	// An empty merge patch changes nothing itself, but the API server runs
	// mutating admission on it, and the webhook's patch is then stored.
	err := r.Client.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte("{}")))
	switch {
	case apierrors.IsNotFound(err):
		r.failures.Forget(key)
		return ctrl.Result{}, nil
	case apierrors.IsConflict(err):
		return ctrl.Result{}, err
	case err != nil:
		// Denied by the webhook (which names the field and the fix) or by
		// a policy, or the webhook failed with failurePolicy Fail: trying
		// again soon would meet the same answer.
		delay := r.failures.Next(key, r.backoff())
		r.Recorder.Eventf(d, nil, corev1.EventTypeWarning, "NotInjected", "Readmit",
			"admission refused it: %v. Fix the Deployment or remove the label %s; trying again in %s",
			truncate(err.Error()), annotations.DevHot, delay.Round(time.Second))
		return ctrl.Result{RequeueAfter: delay}, nil
	}
	if Decide(d, r.Excluded) == Readmit {
		delay := r.failures.Next(key, r.backoff())
		r.Recorder.Eventf(d, nil, corev1.EventTypeWarning, "NotInjected", "Readmit",
			"still not injected after admission: the webhook is unreachable; trying again in %s", delay.Round(time.Second))
		return ctrl.Result{RequeueAfter: delay}, nil
	}
	r.failures.Forget(key)
	return ctrl.Result{}, nil
}

// revert undoes an injection whose label went while the webhook was down.
// The patch tests the resourceVersion it was computed from, so a concurrent
// change (the label put back) makes it fail and the next pass decides anew.
func (r *Reconciler) revert(ctx context.Context, d *appsv1.Deployment) error {
	out, outcome, _, err := mutate.Deployment(d, mutate.Options{})
	if err != nil || outcome != mutate.Reverted {
		// An unreadable record: leave the Deployment alone, and its service
		// account with it (the RBAC reconciler keeps what a template names).
		r.Recorder.Eventf(d, nil, corev1.EventTypeWarning, "RevertFailed", "Revert",
			"label %s was removed while the webhook was unreachable, but the injection cannot be undone (%v): remove the %s annotation and apply the original manifest",
			annotations.DevHot, errOr(err, string(outcome)), annotations.Injected)
		return nil
	}
	ops, err := mutate.Patch(d, out)
	if err != nil {
		return err
	}
	patch, err := revertPatch(d.ResourceVersion, ops)
	if err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, d, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return client.IgnoreNotFound(err)
	}
	r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, "Reverted", "Revert",
		"label %s was removed while the webhook was unreachable: restored the original pod template and removed the fetcher",
		annotations.DevHot)
	return nil
}

// revertPatch is ops, preceded by a test of resourceVersion.
func revertPatch(resourceVersion string, ops []jsonpatch.Operation) ([]byte, error) {
	all := append([]jsonpatch.Operation{jsonpatch.NewOperation("test", "/metadata/resourceVersion", resourceVersion)}, ops...)
	b, err := json.Marshal(all)
	if err != nil {
		return nil, fmt.Errorf("revert patch: %w", err)
	}
	return b, nil
}

func (r *Reconciler) backoff() backoff.Backoff {
	if r.Backoff == (backoff.Backoff{}) {
		return DefaultBackoff
	}
	return r.Backoff
}

// maxCause bounds the quoted error in an Event's note, which the API caps
// at 1 kB: a denial can list many fields.
const maxCause = 600

func truncate(s string) string {
	if len(s) <= maxCause {
		return s
	}
	return s[:maxCause] + "…"
}

func errOr(err error, outcome string) error {
	if err != nil {
		return err
	}
	return errors.New("outcome " + outcome)
}
