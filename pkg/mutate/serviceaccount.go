package mutate

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"

	"github.com/aether-dev/aether-devhot/pkg/names"
)

// serviceAccount applies rule 6b: the default service account is replaced,
// and the pod's automatic token turned off; the pod's own account is kept
// so the app's identity never changes.
func serviceAccount(d *appsv1.Deployment, rec *record) string {
	spec := &d.Spec.Template.Spec
	if spec.ServiceAccountName != "" && spec.ServiceAccountName != "default" {
		return fmt.Sprintf("aether-devhot: serviceAccountName %q kept; the reconciler binds Role %s to it",
			spec.ServiceAccountName, names.Role(d.Name))
	}
	orig := spec.ServiceAccountName
	rec.ServiceAccountName = &orig
	rec.DeprecatedServiceAccount = spec.DeprecatedServiceAccount
	// The API server keeps the deprecated alias equal to the name; setting
	// both keeps a re-injection of a stored object free of changes.
	spec.ServiceAccountName = names.ServiceAccount(d.Name)
	spec.DeprecatedServiceAccount = spec.ServiceAccountName
	// The fetcher has its own projected token; the app, which ran with the
	// default account, must not get a token with the fetcher's rights.
	rec.Automount = &savedBool{Was: spec.AutomountServiceAccountToken}
	spec.AutomountServiceAccountToken = ptr.To(false)
	return ""
}
