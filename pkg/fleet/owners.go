package fleet

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

// ownerIndex indexes pods and ReplicaSets by the UID of their controller,
// so that a change of a ReplicaSet or a Deployment finds what it owns.
const ownerIndex = "controller-uid"

// byController is the ownerIndex function.
func byController(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(m); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// ownedBy lists what store holds of owner's, by ownerIndex; owner may be a
// deletion's tombstone.
func ownedBy(store cache.Indexer, owner any) []any {
	if tomb, ok := owner.(cache.DeletedFinalStateUnknown); ok {
		owner = tomb.Obj
	}
	m, ok := owner.(metav1.Object)
	if !ok {
		return nil
	}
	list, _ := store.ByIndex(ownerIndex, string(m.GetUID()))
	return list
}

// controllerOnly is the one owner reference that ownership follows.
func controllerOnly(m metav1.Object) []metav1.OwnerReference {
	if ref := metav1.GetControllerOf(m); ref != nil {
		return []metav1.OwnerReference{*ref}
	}
	return nil
}

// slimReplicaSet is the ReplicaSet informer's transform: identity and the
// controller, the link from a pod to its Deployment.
func slimReplicaSet(obj any) (any, error) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return obj, nil
	}
	return &appsv1.ReplicaSet{TypeMeta: rs.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: rs.Name, Namespace: rs.Namespace, UID: rs.UID, ResourceVersion: rs.ResourceVersion,
		OwnerReferences: controllerOnly(rs),
	}}, nil
}

// slimDeployment is the Deployment informer's transform: identity and the
// webhook's injection record.
func slimDeployment(obj any) (any, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return obj, nil
	}
	slim := &appsv1.Deployment{TypeMeta: d.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: d.Name, Namespace: d.Namespace, UID: d.UID, ResourceVersion: d.ResourceVersion,
	}}
	if rec := d.Annotations[annotations.Injected]; rec != "" {
		slim.Annotations = map[string]string{annotations.Injected: rec}
	}
	return slim, nil
}

// owners resolves a pod's controller chain in the informers' stores.
type owners struct {
	replicaSets, deployments cache.Indexer
}

// injected reports whether pod is owned, pod → ReplicaSet → Deployment, each
// the controller of the one before and matched by UID, by a Deployment that
// carries the webhook's injection record. Only such pods are tailed: anyone
// who may create pods can give one the dev-hot annotation and a container
// named aether-fetcher, but not make a ReplicaSet of an injected Deployment
// keep it (the ReplicaSet and Deployment controllers release what their
// selectors do not match, and delete what their replicas do not need).
func (o owners) injected(pod *corev1.Pod) bool {
	rs, ok := controlled[*appsv1.ReplicaSet](o.replicaSets, pod, "ReplicaSet")
	if !ok {
		return false
	}
	d, ok := controlled[*appsv1.Deployment](o.deployments, rs, "Deployment")
	return ok && d.Annotations[annotations.Injected] != ""
}

// controlled finds obj's controller of kind apps/v1 in store, by name and
// UID.
func controlled[T metav1.Object](store cache.Indexer, obj metav1.Object, kind string) (T, bool) {
	var zero T
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != kind || ref.APIVersion != appsv1.SchemeGroupVersion.String() {
		return zero, false
	}
	item, found, err := store.GetByKey(obj.GetNamespace() + "/" + ref.Name)
	if err != nil || !found {
		return zero, false
	}
	owner, ok := item.(T)
	if !ok || owner.GetUID() != ref.UID {
		return zero, false
	}
	return owner, true
}
