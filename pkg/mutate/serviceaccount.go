package mutate

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
)

// ServiceAccountName is the service account the webhook gives a Deployment
// that ran under the namespace's default one (rule 6); the reconciler
// creates it.
func ServiceAccountName(deployment string) string { return deployment + "-devhot" }

// serviceAccount applies rule 6: the default service account is replaced,
// the pod's own is kept so the app's identity never changes.
func serviceAccount(d *appsv1.Deployment, rec *record) string {
	spec := &d.Spec.Template.Spec
	if spec.ServiceAccountName != "" && spec.ServiceAccountName != "default" {
		return fmt.Sprintf("aether-devhot: serviceAccountName %q kept; the reconciler binds Role aether-devhot-%s to it",
			spec.ServiceAccountName, d.Name)
	}
	orig := spec.ServiceAccountName
	rec.ServiceAccountName = &orig
	rec.DeprecatedServiceAccount = spec.DeprecatedServiceAccount
	// The API server keeps the deprecated alias equal to the name; setting
	// both keeps a re-injection of a stored object free of changes.
	spec.ServiceAccountName = ServiceAccountName(d.Name)
	spec.DeprecatedServiceAccount = spec.ServiceAccountName
	return ""
}
