package mutate

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
	"github.com/aether-dev/aether-devhot/pkg/probe"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// inject makes a stripped, labelled Deployment dev-hot (rules 3 to 9 of
// DESIGN.md) and records what it did.
func inject(d *appsv1.Deployment, o Options) ([]string, *Denial) {
	spec := &d.Spec.Template.Spec
	images := o.Images
	if images == nil {
		images = imageconfig.None{}
	}
	var warnings []string

	app, st, serr, den := appContainer(d, images)
	if den != nil {
		return nil, den
	}
	scriptAbs := ""
	if serr == nil {
		if den := checkNodeVersion(app, spec.Containers[app].Image, st.image); den != nil {
			return nil, den
		}
		scriptAbs = scriptPath(st)
	}
	initIdx, w, den := fetchInitContainer(d, app, scriptAbs)
	if den != nil {
		return nil, den
	}
	warnings = append(warnings, w...)
	rec := &record{Version: recordVersion, Mode: o.Mode, Container: spec.Containers[app].Name}

	ws, w, den := workspace(d, initIdx, app, rec)
	if den != nil {
		return nil, den
	}
	warnings = append(warnings, w...)
	// With no initContainer replaced, the pod keeps the code it had (the
	// image's, or what the kept inits put there) until the first push.
	releaseZero := initIdx < 0
	appDir, w, den := rewriteCommand(d, app, st, serr, rec, releaseZero)
	if den != nil {
		return nil, den
	}
	warnings = append(warnings, w...)
	if w := serviceAccount(d, rec); w != "" {
		warnings = append(warnings, w)
	}

	fo := sidecar.Options{
		Image:            o.FetcherImage,
		Deployment:       d.Name,
		Mode:             o.Mode,
		FetchIntervalSec: d.Annotations[annotations.FetchIntervalSec],
		WorkspaceVolume:  ws.Name,
		WorkspaceSubPath: ws.SubPath,
		StoreURL:         o.StoreURL,
	}
	if releaseZero {
		fo.AppDir = appDir
	}
	// The probe is read after the command was rewritten, which leaves the
	// probes alone, and before the fetcher is inserted, which shifts indexes.
	p, problem := probe.FromContainer(&spec.Containers[app])
	switch {
	case p != nil && problem != "":
		warnings = append(warnings, fmt.Sprintf("aether-devhot: %s; the fetcher cannot run it, and runs the %s instead to tell when a release answers", problem, p.Source))
	case problem != "":
		warnings = append(warnings, "aether-devhot: "+problem+"; the fetcher cannot run it, so a release counts as live once it has loaded")
	}
	if p != nil {
		fo.AppProbe = p.String()
	}
	fetcher := sidecar.Container(fo)
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
		where += fmt.Sprintf(", replacing initContainer %q; the app starts once the first release is live", rec.InitContainer.Name)
	} else {
		where += "; the pods run the image's own code until the first push"
		if kept := initNames(spec.InitContainers); len(kept) > 0 {
			where += fmt.Sprintf(", and every initContainer is kept (%s)", strings.Join(kept, ", "))
		}
	}
	warnings = append(warnings, "aether-devhot: fetcher injected "+where+"; remove the label "+annotations.DevHot+" to revert")

	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: sidecar.TokenVolume, VolumeSource: sidecar.TokenVolumeSource(o.StoreURL, spec.ImagePullSecrets)})

	if _, ok := d.Annotations[annotations.Digest]; !ok && rec.InitContainer != nil {
		warnings = append(warnings, fmt.Sprintf("aether-devhot: %s is not set yet: pods wait for the first release; set %s and %s",
			annotations.Digest, annotations.Digest, annotations.ArtifactURL))
	}

	setAnnotation(&d.ObjectMeta.Annotations, annotations.DevHot, annotations.DevHotEnabled)
	setAnnotation(&d.Spec.Template.Annotations, annotations.DevHot, annotations.DevHotEnabled)
	setAnnotation(&d.ObjectMeta.Annotations, annotations.Injected, rec.encode())
	return warnings, nil
}

// initNames names the initContainers other than the fetcher, quoted.
func initNames(ics []corev1.Container) []string {
	var out []string
	for _, c := range ics {
		if c.Name != sidecar.ContainerName {
			out = append(out, fmt.Sprintf("%q", c.Name))
		}
	}
	return out
}

func setAnnotation(m *map[string]string, k, v string) {
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = v
}
