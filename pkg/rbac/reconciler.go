// Package rbac keeps, for every dev-hot Deployment, the ServiceAccount, Role
// and RoleBinding that let its fetchers watch that one Deployment and write
// Events (DESIGN.md "RBAC"). It runs in the manager, not at admission, so the
// webhook stays free of side effects.
package rbac

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
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
	"github.com/aether-dev/aether-devhot/pkg/names"
)

// ManagedByLabel marks the objects this reconciler owns; the manager's cache
// holds only those.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "aether-devhot"
)

// Reconciler creates and removes the RBAC of dev-hot Deployments.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
}

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
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if d.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	if d.Labels[annotations.DevHot] == annotations.DevHotEnabled {
		err := r.ensure(ctx, &d)
		if apierrors.IsAlreadyExists(err) {
			// The cache has not seen what an earlier pass created yet.
			return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.remove(ctx, &d)
}

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
	if sa == names.ServiceAccount(d.Name) {
		obj := &corev1.ServiceAccount{ObjectMeta: r.meta(d, sa)}
		op, err := controllerutil.CreateOrUpdate(ctx, r.Client, obj, func() error { return r.own(d, obj) })
		if err != nil {
			return fmt.Errorf("service account %s: %w", sa, err)
		}
		if op == controllerutil.OperationResultCreated {
			created = append(created, "ServiceAccount/"+sa)
		}
	}
	role := &rbacv1.Role{ObjectMeta: r.meta(d, names.Role(d.Name))}
	op, err := controllerutil.CreateOrUpdate(ctx, r.Client, role, func() error {
		role.Rules = Rules(d.Name)
		return r.own(d, role)
	})
	if err != nil {
		return fmt.Errorf("role %s: %w", role.Name, err)
	}
	if op == controllerutil.OperationResultCreated {
		created = append(created, "Role/"+role.Name)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: r.meta(d, names.Role(d.Name))}
	op, err = controllerutil.CreateOrUpdate(ctx, r.Client, rb, func() error {
		// roleRef cannot change; a binding made for another role is recreated.
		if rb.RoleRef.Name != "" && rb.RoleRef.Name != role.Name {
			return fmt.Errorf("rolebinding %s refers to role %s, not %s: delete it", rb.Name, rb.RoleRef.Name, role.Name)
		}
		rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}
		rb.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: d.Namespace}}
		return r.own(d, rb)
	})
	if err != nil {
		return fmt.Errorf("rolebinding %s: %w", rb.Name, err)
	}
	if op == controllerutil.OperationResultCreated {
		created = append(created, "RoleBinding/"+rb.Name)
	}
	if len(created) > 0 {
		r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, "RBACCreated", "Reconcile",
			"created %v for the fetcher, bound to service account %s", created, sa)
	}
	return nil
}

// Rules lets a fetcher watch its own Deployment and report Events, nothing more.
func Rules(deployment string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{deployment}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

func (r *Reconciler) meta(d *appsv1.Deployment, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: d.Namespace}
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

func (r *Reconciler) remove(ctx context.Context, d *appsv1.Deployment) error {
	var removed []string
	for kind, obj := range map[string]client.Object{
		"RoleBinding":    &rbacv1.RoleBinding{},
		"Role":           &rbacv1.Role{},
		"ServiceAccount": &corev1.ServiceAccount{},
	} {
		name := names.Role(d.Name)
		if kind == "ServiceAccount" {
			name = names.ServiceAccount(d.Name)
		}
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		if !metav1.IsControlledBy(obj, d) {
			continue // not ours: never delete a user's object
		}
		if err := r.Client.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
			return err
		}
		removed = append(removed, kind+"/"+name)
	}
	if len(removed) > 0 {
		slices.Sort(removed)
		r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, "RBACRemoved", "Reconcile",
			"label %s removed: deleted the fetcher's %v", annotations.DevHot, removed)
	}
	return nil
}
