package mutate

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/names"
	"github.com/aether-dev/aether-devhot/pkg/nodecmd"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// strip undoes what the pass that wrote rec injected (rule 8, and the first
// half of rule 2). Where the user changed a field since, for example when
// `kubectl apply` put the original initContainer or command back, the
// user's value wins.
func strip(d *appsv1.Deployment, rec *record) {
	spec := &d.Spec.Template.Spec
	isFetcher := func(c corev1.Container) bool { return c.Name == sidecar.ContainerName }
	at := slices.IndexFunc(spec.InitContainers, isFetcher)
	spec.InitContainers = slices.DeleteFunc(spec.InitContainers, isFetcher)
	spec.Containers = slices.DeleteFunc(spec.Containers, isFetcher)

	if ic := rec.InitContainer; ic != nil && indexOf(spec.InitContainers, ic.Name) < 0 {
		if at < 0 || rec.Mode == sidecar.ModeLegacy {
			at = rec.InitIndex
		}
		at = min(max(at, 0), len(spec.InitContainers))
		spec.InitContainers = slices.Insert(spec.InitContainers, at, *ic.DeepCopy())
	}

	if i := indexOf(spec.Containers, rec.Container); i >= 0 {
		c := &spec.Containers[i]
		boot := bootPath(rec.Workspace)
		if nodecmd.Mentions(c.Command, boot) || nodecmd.Mentions(c.Args, boot) {
			c.Command = slices.Clone(rec.Command)
			if c.Args == nil || nodecmd.Mentions(c.Args, boot) {
				c.Args = slices.Clone(rec.Args)
			}
		}
		c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == sidecar.EnvEntry || e.Name == sidecar.EnvAppDir })
		if len(c.Env) == 0 {
			c.Env = nil
		}
		if rec.AddedMount {
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == sidecar.WorkspaceVolume })
			if len(c.VolumeMounts) == 0 {
				c.VolumeMounts = nil
			}
		}
	}

	spec.Volumes = slices.DeleteFunc(spec.Volumes, func(v corev1.Volume) bool {
		return v.Name == sidecar.TokenVolume || (rec.AddedVolume && v.Name == sidecar.WorkspaceVolume)
	})
	if len(spec.Volumes) == 0 {
		spec.Volumes = nil
	}
	if len(spec.InitContainers) == 0 {
		spec.InitContainers = nil
	}

	if rec.ServiceAccountName != nil && spec.ServiceAccountName == names.ServiceAccount(d.Name) {
		if spec.DeprecatedServiceAccount == spec.ServiceAccountName {
			spec.DeprecatedServiceAccount = rec.DeprecatedServiceAccount
		}
		spec.ServiceAccountName = *rec.ServiceAccountName
		if a := spec.AutomountServiceAccountToken; rec.Automount != nil && a != nil && !*a {
			spec.AutomountServiceAccountToken = rec.Automount.Was
		}
	}

	deleteAnnotation(&d.Annotations, annotations.Injected)
	deleteAnnotation(&d.Annotations, annotations.DevHot)
	deleteAnnotation(&d.Spec.Template.Annotations, annotations.DevHot)
}

func deleteAnnotation(m *map[string]string, k string) {
	delete(*m, k)
	if len(*m) == 0 {
		*m = nil
	}
}
