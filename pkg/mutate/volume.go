package mutate

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// workspace finds the volume the replaced initContainer shared with the app
// container (rule 4), or adds the EmptyDir WorkspaceVolume and mounts it into
// the app at WorkspaceMountPath. It returns the app's mount of it.
func workspace(d *appsv1.Deployment, initIdx, app int, rec *record) (corev1.VolumeMount, *Denial) {
	spec := &d.Spec.Template.Spec
	appC := &spec.Containers[app]
	if initIdx >= 0 {
		for _, im := range spec.InitContainers[initIdx].VolumeMounts {
			if i := slices.IndexFunc(appC.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == im.Name }); i >= 0 {
				rec.Workspace = appC.VolumeMounts[i].MountPath
				return appC.VolumeMounts[i], nil
			}
		}
	}
	for i, m := range appC.VolumeMounts {
		if m.MountPath == sidecar.WorkspaceMountPath {
			return corev1.VolumeMount{}, deny(ReasonReservedName,
				fmt.Sprintf("spec.template.spec.containers[%d].volumeMounts[%d].mountPath", app, i),
				fmt.Sprintf("%s is where the new %s volume goes, and the fetch initContainer shares no volume with container %q",
					sidecar.WorkspaceMountPath, sidecar.WorkspaceVolume, appC.Name),
				"mount the app's code volume into the fetch initContainer too, or move this mount")
		}
	}
	spec.Volumes = append(spec.Volumes, corev1.Volume{
		Name:         sidecar.WorkspaceVolume,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
	})
	m := corev1.VolumeMount{Name: sidecar.WorkspaceVolume, MountPath: sidecar.WorkspaceMountPath}
	appC.VolumeMounts = append(appC.VolumeMounts, m)
	rec.AddedVolume, rec.AddedMount, rec.Workspace = true, true, sidecar.WorkspaceMountPath
	return m, nil
}
