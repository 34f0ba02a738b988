// Package rbac keeps, for every dev-hot Deployment, the ServiceAccount, Role
// and RoleBinding that let its fetchers watch that one Deployment and write
// Events (DESIGN.md "RBAC"). It runs in the manager, not at admission, so the
// webhook stays free of side effects.
package rbac

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/backoff"
	"github.com/aether-dev/aether-devhot/pkg/names"
)

// ManagedByLabel marks the objects this reconciler owns; the manager's cache
// holds only those.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "aether-devhot"
)

// Reconciler creates the RBAC of dev-hot Deployments (labelled, and
// injected by the webhook) and removes it when the label goes.
type Reconciler struct {
	Client client.Client
	// APIReader reads past the cache, which holds only the objects we
	// labelled: it tells whether an object that already exists under one of
	// our names is ours (the cache is behind) or someone else's.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// ConflictBackoff spaces out the retries of a Deployment whose RBAC
	// cannot be made because another object holds one of its names; the
	// zero value is DefaultConflictBackoff.
	ConflictBackoff backoff.Backoff

	failures backoff.Failures[types.NamespacedName]
}

// DefaultConflictBackoff: a name taken by someone else is a user's to fix,
// so retries start at seconds and settle at minutes. The cache does not see
// the foreign object go (it is not labelled), so retrying is how its
// deletion is noticed.
var DefaultConflictBackoff = backoff.Backoff{Base: 5 * time.Second, Max: 5 * time.Minute, Equal: true}

// cacheBackoff spaces out the retries while the cache has not yet seen an
// object this reconciler created.
var cacheBackoff = backoff.Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second, Equal: true}

// SetupWithManager registers the reconciler. It sees a Deployment while it
// carries the label or our record, before or after an update (so a label
// removal is seen), and the objects it owns (so a deleted Role comes back).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	relevant := func(o client.Object) bool {
		_, labelled := o.GetLabels()[annotations.DevHot]
		_, injected := o.GetAnnotations()[annotations.Injected]
		return labelled || injected
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("devhot-rbac").
		For(&appsv1.Deployment{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(e event.CreateEvent) bool { return relevant(e.Object) },
			UpdateFunc:  func(e event.UpdateEvent) bool { return relevant(e.ObjectOld) || relevant(e.ObjectNew) },
			DeleteFunc:  func(event.DeleteEvent) bool { return false },
			GenericFunc: func(e event.GenericEvent) bool { return relevant(e.Object) },
		})).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var d appsv1.Deployment
	if err := r.Client.Get(ctx, req.NamespacedName, &d); err != nil {
		// A deleted Deployment's objects go with it through garbage collection.
		r.failures.Forget(req.NamespacedName)
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if d.DeletionTimestamp != nil {
		r.failures.Forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	// Only an injected Deployment runs a fetcher. A labelled one that
	// admission missed gets no Role: it would be bound to the pods' own
	// account (often the namespace's default), which the app holds.
	_, injected := d.Annotations[annotations.Injected]
	if d.Labels[annotations.DevHot] != annotations.DevHotEnabled || !injected {
		r.failures.Forget(req.NamespacedName)
		return ctrl.Result{}, r.remove(ctx, &d)
	}
	err := r.ensure(ctx, &d)
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		delay := r.failures.Next(req.NamespacedName, r.conflictBackoff())
		r.Recorder.Eventf(&d, nil, corev1.EventTypeWarning, "RBACConflict", "Reconcile",
			"%v; the fetcher gets no rights until then. Trying again in %s", conflict, delay.Round(time.Second))
		return ctrl.Result{RequeueAfter: delay}, nil
	case errors.Is(err, errCacheBehind):
		return ctrl.Result{RequeueAfter: r.failures.Next(req.NamespacedName, cacheBackoff)}, nil
	case err != nil:
		return ctrl.Result{}, err
	}
	r.failures.Forget(req.NamespacedName)
	return ctrl.Result{}, nil
}

// ConflictError is an object that holds a name this reconciler makes for a
// Deployment, but that it did not make for that Deployment. It is never
// adopted, changed or deleted.
type ConflictError struct {
	Kind, Namespace, Name string
	// Why says how it is not ours.
	Why string
	// Fix says what the user can do.
	Fix string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s %s/%s %s: %s", e.Kind, e.Namespace, e.Name, e.Why, e.Fix)
}

// errCacheBehind: Create found an object that is ours which the cache has
// not seen yet, or Update found a newer version than the cache's.
var errCacheBehind = errors.New("the cache has not seen an object we created")

// podServiceAccount is the account the Deployment's pods run as.
func podServiceAccount(d *appsv1.Deployment) string {
	if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "" {
		return sa
	}
	return "default"
}

func (r *Reconciler) ensure(ctx context.Context, d *appsv1.Deployment) error {
	sa := podServiceAccount(d)
	var created []string
	const fix = "delete or rename it, and the manager makes its own; it is never adopted"
	if sa == names.ServiceAccount(d.Name) {
		pull, err := r.defaultPullSecrets(ctx, d.Namespace)
		if err != nil {
			return err
		}
		made, err := r.ensureOne(ctx, d, &corev1.ServiceAccount{}, "ServiceAccount", sa,
			fix+", or give the pods a service account of your own in spec.template.spec.serviceAccountName",
			func(o client.Object) error {
				o.(*corev1.ServiceAccount).ImagePullSecrets = pull
				return nil
			})
		if err != nil {
			return err
		}
		if made {
			created = append(created, "ServiceAccount/"+sa)
		}
	}
	role := names.Role(d.Name)
	made, err := r.ensureOne(ctx, d, &rbacv1.Role{}, "Role", role, fix, func(o client.Object) error {
		o.(*rbacv1.Role).Rules = Rules(d.Name)
		return nil
	})
	if err != nil {
		return err
	}
	if made {
		created = append(created, "Role/"+role)
	}
	made, err = r.ensureOne(ctx, d, &rbacv1.RoleBinding{}, "RoleBinding", role, fix, func(o client.Object) error {
		rb := o.(*rbacv1.RoleBinding)
		// roleRef cannot change; a binding made for another role is recreated.
		if rb.RoleRef.Name != "" && rb.RoleRef.Name != role {
			return &ConflictError{Kind: "RoleBinding", Namespace: d.Namespace, Name: role,
				Why: "refers to role " + rb.RoleRef.Name + ", not " + role, Fix: "delete it, and the manager makes it again"}
		}
		rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role}
		rb.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: d.Namespace}}
		return nil
	})
	if err != nil {
		return err
	}
	if made {
		created = append(created, "RoleBinding/"+role)
	}
	if len(created) > 0 {
		r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, "RBACCreated", "Reconcile",
			"created %v for the fetcher, bound to service account %s", created, sa)
	}
	return nil
}

// defaultPullSecrets are the imagePullSecrets of namespace's default
// service account, which the pods ran as before the webhook moved them to
// the fetcher's: the ServiceAccount admission plugin gives a pod its
// account's pull secrets, so ours must carry them, or images that pulled
// with them no longer would. They are copied on every reconcile of the
// Deployment. The default account is not ours, so it is read past the
// cache.
func (r *Reconciler) defaultPullSecrets(ctx context.Context, namespace string) ([]corev1.LocalObjectReference, error) {
	var def corev1.ServiceAccount
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "default"}, &def)
	if apierrors.IsNotFound(err) || err == nil && len(def.ImagePullSecrets) == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the default service account's imagePullSecrets: %w", err)
	}
	return slices.Clone(def.ImagePullSecrets), nil
}

// ensureOne makes obj (an empty object of kind) named name in d's
// namespace exist, controlled by d, with fill applied; it reports whether
// it created it. An object of that name that d does not control is a
// *ConflictError: unlabelled ones are invisible to the cache, so Create
// meets them; labelled ones without our controller reference (made by
// hand, or orphaned) are found in the cache. Neither is adopted.
func (r *Reconciler) ensureOne(ctx context.Context, d *appsv1.Deployment, obj client.Object, kind, name, fix string, fill func(client.Object) error) (bool, error) {
	key := types.NamespacedName{Namespace: d.Namespace, Name: name}
	err := r.Client.Get(ctx, key, obj)
	switch {
	case apierrors.IsNotFound(err):
		obj.SetName(name)
		obj.SetNamespace(d.Namespace)
		if err := fill(obj); err != nil {
			return false, err
		}
		if err := r.own(d, obj); err != nil {
			return false, err
		}
		err := r.Client.Create(ctx, obj)
		if !apierrors.IsAlreadyExists(err) {
			if err != nil {
				return false, fmt.Errorf("creating %s %s: %w", kind, name, err)
			}
			return true, nil
		}
		existing := obj.DeepCopyObject().(client.Object)
		if err := r.APIReader.Get(ctx, key, existing); err != nil {
			return false, fmt.Errorf("%s %s exists but cannot be read: %w", kind, name, err)
		}
		if metav1.IsControlledBy(existing, d) {
			return false, errCacheBehind
		}
		return false, &ConflictError{Kind: kind, Namespace: d.Namespace, Name: name, Why: notOurs(existing), Fix: fix}
	case err != nil:
		return false, err
	}
	if !metav1.IsControlledBy(obj, d) {
		return false, &ConflictError{Kind: kind, Namespace: d.Namespace, Name: name, Why: notOurs(obj), Fix: fix}
	}
	before := obj.DeepCopyObject()
	if err := fill(obj); err != nil {
		return false, err
	}
	if err := r.own(d, obj); err != nil {
		return false, err
	}
	if equality.Semantic.DeepEqual(before, obj) {
		return false, nil
	}
	if err := r.Client.Update(ctx, obj); apierrors.IsConflict(err) {
		return false, errCacheBehind
	} else if err != nil {
		return false, fmt.Errorf("updating %s %s: %w", kind, name, err)
	}
	return false, nil
}

// notOurs says why obj, which d does not control, is not ours.
func notOurs(obj client.Object) string {
	if obj.GetLabels()[ManagedByLabel] != ManagedBy {
		return "exists and was not made by aether-devhot (no " + ManagedByLabel + "=" + ManagedBy + " label)"
	}
	if c := metav1.GetControllerOf(obj); c != nil {
		return "is labelled " + ManagedByLabel + "=" + ManagedBy + " but controlled by " + c.Kind + " " + c.Name + " (uid " + string(c.UID) + "), not this Deployment"
	}
	return "is labelled " + ManagedByLabel + "=" + ManagedBy + " but controlled by nothing, not by this Deployment"
}

// Rules lets a fetcher watch its own Deployment and report Events, nothing more.
func Rules(deployment string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{deployment}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

// own labels obj as ours and makes the Deployment its controller, so it is
// garbage-collected with the Deployment.
func (r *Reconciler) own(d *appsv1.Deployment, obj client.Object) error {
	l := obj.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[ManagedByLabel] = ManagedBy
	obj.SetLabels(l)
	return controllerutil.SetControllerReference(d, obj, r.Client.Scheme())
}

// remove deletes the objects d controls, once its pod template no longer
// needs them. While d still carries our record, the injection is still in
// its template (the label went while the webhook was down, and package
// readmit reverts it): its pods still run the fetcher under our service
// account, so nothing goes yet. The ServiceAccount also stays while any
// Deployment's template in the namespace names it: new pods would be
// refused without it.
func (r *Reconciler) remove(ctx context.Context, d *appsv1.Deployment) error {
	if _, injected := d.Annotations[annotations.Injected]; injected {
		return nil
	}
	saName := names.ServiceAccount(d.Name)
	user, err := r.templateNaming(ctx, d.Namespace, saName)
	if err != nil {
		return err
	}
	var removed []string
	for _, o := range []struct {
		kind string
		obj  client.Object
		name string
	}{
		{"RoleBinding", &rbacv1.RoleBinding{}, names.Role(d.Name)},
		{"Role", &rbacv1.Role{}, names.Role(d.Name)},
		{"ServiceAccount", &corev1.ServiceAccount{}, saName},
	} {
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: o.name}, o.obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		if !metav1.IsControlledBy(o.obj, d) {
			continue // not ours: never delete a user's object
		}
		if o.kind == "ServiceAccount" && user != "" {
			r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, "RBACKept", "Reconcile",
				"kept ServiceAccount %s: the pod template of Deployment %s still names it", saName, user)
			continue
		}
		if err := r.Client.Delete(ctx, o.obj); client.IgnoreNotFound(err) != nil {
			return err
		}
		removed = append(removed, o.kind+"/"+o.name)
	}
	if len(removed) > 0 {
		slices.Sort(removed)
		r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, "RBACRemoved", "Reconcile",
			"label %s removed: deleted the fetcher's %v", annotations.DevHot, removed)
	}
	return nil
}

// templateNaming returns a Deployment in namespace whose pod template runs
// as service account sa, or "".
func (r *Reconciler) templateNaming(ctx context.Context, namespace, sa string) (string, error) {
	var list appsv1.DeploymentList
	if err := r.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return "", err
	}
	for _, d := range list.Items {
		spec := d.Spec.Template.Spec
		if spec.ServiceAccountName == sa || (spec.ServiceAccountName == "" && spec.DeprecatedServiceAccount == sa) {
			return d.Name, nil
		}
	}
	return "", nil
}

func (r *Reconciler) conflictBackoff() backoff.Backoff {
	if r.ConflictBackoff == (backoff.Backoff{}) {
		return DefaultConflictBackoff
	}
	return r.ConflictBackoff
}
