package mutate

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

// fetchInitContainer picks the initContainer that the fetcher replaces
// (rule 3), -1 for none. One is replaced only when it fetches the app's
// code: aether.dev/fetch-init-container names it, or it shares with the app
// container an emptyDir that the app mounts read-write and that holds the
// app's entry script (scriptAbs, "" when unknown). An init that waits for a
// database, chowns a volume or renders config shares no such volume, and
// stays. An empty annotation replaces none.
func fetchInitContainer(d *appsv1.Deployment, app int, scriptAbs string) (int, []string, *Denial) {
	spec := &d.Spec.Template.Spec
	ics := spec.InitContainers
	if name, ok := d.Annotations[annotations.FetchInitContainer]; ok {
		if name == "" {
			return -1, nil, nil
		}
		if i := indexOf(ics, name); i >= 0 {
			return i, nil, nil
		}
		return -1, nil, deny(ReasonUnknownContainer, annotationField(annotations.FetchInitContainer),
			fmt.Sprintf("names %q, which is not in spec.template.spec.initContainers", name),
			"set it to one of: %s, or to \"\" to replace none", containerNames(ics))
	}
	var warnings []string
	for i, ic := range ics {
		if isNativeSidecar(ic) {
			continue
		}
		for _, m := range ic.VolumeMounts {
			am := codeMount(spec, app, m.Name)
			if am == nil {
				continue
			}
			if scriptAbs != "" {
				if _, in := within(scriptAbs, am.MountPath); in {
					return i, nil, nil
				}
				continue
			}
			warnings = append(warnings, fmt.Sprintf(
				"aether-devhot: initContainer %q shares emptyDir %q with container %q and is kept, because where the app's entry script lives is unknown; if it fetches the app's code, set %s=%s",
				ic.Name, m.Name, spec.Containers[app].Name, annotations.FetchInitContainer, ic.Name))
		}
	}
	return -1, warnings, nil
}

// codeMount returns the app container's read-write mount of volume, when
// volume is an emptyDir: the only kind of volume that can hold the app's
// code as an init fetched it and that the fetcher may take over.
func codeMount(spec *corev1.PodSpec, app int, volume string) *corev1.VolumeMount {
	v := volumeOf(spec, volume)
	if v == nil || v.EmptyDir == nil {
		return nil
	}
	for i, m := range spec.Containers[app].VolumeMounts {
		if m.Name == volume && !m.ReadOnly {
			return &spec.Containers[app].VolumeMounts[i]
		}
	}
	return nil
}

func volumeOf(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func isNativeSidecar(c corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}
