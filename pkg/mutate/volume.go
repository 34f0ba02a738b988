package mutate

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// workspace picks the volume the fetcher and the app share (rule 4) and
// returns the app's mount of it. It takes over the emptyDir that the
// replaced initContainer filled with the app's code; otherwise it adds the
// emptyDir WorkspaceVolume, with a sizeLimit, mounted at WorkspaceMountPath
// in the app. It never takes a PersistentVolumeClaim, an ephemeral,
// configMap, secret or projected volume, or one the app mounts read-only.
func workspace(d *appsv1.Deployment, initIdx, app int, rec *record) (corev1.VolumeMount, []string, *Denial) {
	spec := &d.Spec.Template.Spec
	appC := &spec.Containers[app]
	var warnings []string
	if initIdx >= 0 {
		ic := spec.InitContainers[initIdx]
		for _, im := range ic.VolumeMounts {
			if am := codeMount(spec, app, im.Name); am != nil {
				rec.Workspace = am.MountPath
				if others := othersMounting(spec, initIdx, im.Name); len(others) > 0 {
					warnings = append(warnings, fmt.Sprintf(
						"aether-devhot: initContainers %s also mount %q, the workspace where the fetcher publishes releases; they run before the fetcher, and what they write there is not part of a release",
						strings.Join(others, ", "), im.Name))
				}
				return *am, warnings, nil
			}
		}
		warnings = append(warnings, fmt.Sprintf(
			"aether-devhot: initContainer %q, which the fetcher replaces, shares no emptyDir that container %q mounts read-write; the fetcher publishes into a new emptyDir %s at %s",
			ic.Name, appC.Name, sidecar.WorkspaceVolume, sidecar.WorkspaceMountPath))
	}
	for i, m := range appC.VolumeMounts {
		if m.MountPath == sidecar.WorkspaceMountPath {
			return corev1.VolumeMount{}, nil, deny(ReasonReservedName,
				containerField(app, fmt.Sprintf("volumeMounts[%d].mountPath", i)),
				fmt.Sprintf("%s is where the new %s volume goes, and no initContainer's emptyDir holds the code of container %q",
					sidecar.WorkspaceMountPath, sidecar.WorkspaceVolume, appC.Name),
				"move this mount, or name the initContainer that fetches the code with aether.dev/fetch-init-container")
		}
	}
	spec.Volumes = append(spec.Volumes, corev1.Volume{
		Name:         sidecar.WorkspaceVolume,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: sidecar.WorkspaceSizeLimit()}},
	})
	m := corev1.VolumeMount{Name: sidecar.WorkspaceVolume, MountPath: sidecar.WorkspaceMountPath}
	appC.VolumeMounts = append(appC.VolumeMounts, m)
	rec.AddedVolume, rec.AddedMount, rec.Workspace = true, true, sidecar.WorkspaceMountPath
	return m, warnings, nil
}

// othersMounting names the initContainers other than skip that mount volume.
func othersMounting(spec *corev1.PodSpec, skip int, volume string) []string {
	var out []string
	for i, ic := range spec.InitContainers {
		if i != skip && slices.ContainsFunc(ic.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == volume }) {
			out = append(out, fmt.Sprintf("%q", ic.Name))
		}
	}
	return out
}

// mountsUnder names the app's mounts at or below dir, other than the
// workspace: once the app runs a release from the workspace, its relative
// paths resolve there, where these volumes are not.
func mountsUnder(c *corev1.Container, dir, workspace string) []string {
	var out []string
	for _, m := range c.VolumeMounts {
		if m.MountPath == workspace {
			continue
		}
		if _, in := within(m.MountPath, dir); in {
			out = append(out, m.MountPath)
		}
	}
	return out
}
