package mutate

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// inject makes a stripped, labelled Deployment dev-hot (rules 3 to 9 of
// DESIGN.md) and records what it did.
func inject(d *appsv1.Deployment, o Options) ([]string, *Denial) {
	spec := &d.Spec.Template.Spec
	var warnings []string

	app, den := appContainer(d)
	if den != nil {
		return nil, den
	}
	initIdx, den := fetchInitContainer(d)
	if den != nil {
		return nil, den
	}
	rec := &record{Version: recordVersion, Mode: o.Mode, Container: spec.Containers[app].Name}

	ws, den := workspace(d, initIdx, app, rec)
	if den != nil {
		return nil, den
	}
	w, den := rewriteCommand(d, app, rec)
	if den != nil {
		return nil, den
	}
	warnings = append(warnings, w...)
	if w := serviceAccount(d, rec); w != "" {
		warnings = append(warnings, w)
	}

	fetcher := sidecar.Container(sidecar.Options{
		Image:            o.FetcherImage,
		Deployment:       d.Name,
		Mode:             o.Mode,
		FetchIntervalSec: d.Annotations[annotations.FetchIntervalSec],
		WorkspaceVolume:  ws.Name,
		WorkspaceSubPath: ws.SubPath,
	})
	at := 0
	if initIdx >= 0 {
		c := spec.InitContainers[initIdx]
		rec.InitContainer, rec.InitIndex, at = &c, initIdx, initIdx
		spec.InitContainers = slices.Delete(spec.InitContainers, initIdx, initIdx+1)
	}
	where := ""
	switch o.Mode {
	case sidecar.ModeLegacy:
		spec.Containers = slices.Insert(spec.Containers, 0, fetcher)
		where = "as a legacy sidecar (containers[0], postStart `fetcher wait-ready`)"
	default:
		spec.InitContainers = slices.Insert(spec.InitContainers, at, fetcher)
		where = fmt.Sprintf("as a native sidecar (initContainers[%d], restartPolicy: Always)", at)
	}
	if rec.InitContainer != nil {
		where += fmt.Sprintf(", replacing initContainer %q", rec.InitContainer.Name)
	}
	warnings = append(warnings, "aether-devhot: fetcher injected "+where+"; remove the label "+annotations.DevHot+" to revert")

	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: sidecar.TokenVolume, VolumeSource: sidecar.TokenVolumeSource()})

	if _, ok := d.Annotations[annotations.Digest]; !ok {
		warnings = append(warnings, fmt.Sprintf("aether-devhot: %s is not set yet: pods wait for the first release; set %s and %s",
			annotations.Digest, annotations.Digest, annotations.ArtifactURL))
	}

	setAnnotation(&d.ObjectMeta.Annotations, annotations.DevHot, annotations.DevHotEnabled)
	setAnnotation(&d.Spec.Template.Annotations, annotations.DevHot, annotations.DevHotEnabled)
	setAnnotation(&d.ObjectMeta.Annotations, annotations.Injected, rec.encode())
	return warnings, nil
}

func setAnnotation(m *map[string]string, k, v string) {
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = v
}

// appContainer picks the app container (DESIGN.md, aether.dev/container).
func appContainer(d *appsv1.Deployment) (int, *Denial) {
	cs := d.Spec.Template.Spec.Containers
	if len(cs) == 0 {
		return 0, deny(ReasonMalformed, "spec.template.spec.containers", "is empty", "add the Node.js app container")
	}
	if name, ok := d.Annotations[annotations.Container]; ok {
		if i := indexOf(cs, name); i >= 0 {
			return i, nil
		}
		return 0, deny(ReasonUnknownContainer, annotationField(annotations.Container),
			fmt.Sprintf("names %q, which is not in spec.template.spec.containers", name),
			"set it to one of: %s", names(cs))
	}
	if name, ok := d.Spec.Template.Annotations[annotations.DefaultContainer]; ok {
		if i := indexOf(cs, name); i >= 0 {
			return i, nil
		}
	}
	return 0, nil
}

// fetchInitContainer picks the initContainer the fetcher replaces, -1 for none.
func fetchInitContainer(d *appsv1.Deployment) (int, *Denial) {
	ics := d.Spec.Template.Spec.InitContainers
	if name, ok := d.Annotations[annotations.FetchInitContainer]; ok {
		if i := indexOf(ics, name); i >= 0 {
			return i, nil
		}
		return -1, deny(ReasonUnknownContainer, annotationField(annotations.FetchInitContainer),
			fmt.Sprintf("names %q, which is not in spec.template.spec.initContainers", name),
			"set it to one of: %s", names(ics))
	}
	if len(ics) == 0 {
		return -1, nil
	}
	return 0, nil
}

func indexOf(cs []corev1.Container, name string) int {
	return slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name })
}

func names(cs []corev1.Container) string {
	if len(cs) == 0 {
		return "(none: remove the annotation)"
	}
	n := make([]string, len(cs))
	for i, c := range cs {
		n[i] = c.Name
	}
	return strings.Join(n, ", ")
}
