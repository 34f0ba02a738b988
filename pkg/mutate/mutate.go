// Package mutate turns a labelled Deployment into a dev-hot Deployment and
// back. Deployment is a pure function; Handler is the thin admission edge
// around it.
package mutate

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// Options configure the mutation.
type Options struct {
	// FetcherImage is the image of the injected fetcher.
	FetcherImage string
	// Mode decides how the fetcher runs beside the app.
	Mode sidecar.Mode
	// StoreURL is the artifact store's root URL (the webhook's
	// --store-url): the fetcher gets a token for it and sends that token
	// there only. Empty: no store token.
	StoreURL string
	// Images is asked how a container starts when it leaves the command
	// to its image; nil asks nothing (imageconfig.None). The handler binds
	// it to each request's deadline.
	Images imageconfig.Source
}

// Outcome says what Deployment did.
type Outcome string

// Outcomes, also the values of the result label of the mutations metric
// (with "noop" and "denied", which the handler decides).
const (
	// Injected: the Deployment is labelled and now carries the fetcher.
	Injected Outcome = "injected"
	// Reverted: the label is gone and an earlier injection was undone.
	Reverted Outcome = "reverted"
	// Untouched: not labelled and never injected.
	Untouched Outcome = "untouched"
)

// Deployment returns the dev-hot form of in when it is labelled
// aether.dev/dev-hot=true, and its original form when the label is gone but
// an earlier pass injected it. It never modifies in. Applying it to its own
// output gives the same object, because it first strips whatever an earlier
// pass injected (from the aether.dev/injected record) and then injects anew.
// The warnings are for kubectl; a *Denial error means the object must be
// refused.
func Deployment(in *appsv1.Deployment, o Options) (*appsv1.Deployment, Outcome, []string, error) {
	d := in.DeepCopy()
	rec, err := readRecord(d.Annotations)
	if err != nil {
		return nil, "", nil, deny(ReasonBadAnnotation, annotationField(annotations.Injected),
			"is written by the webhook and cannot be read: "+err.Error(),
			"remove the annotation and apply the original manifest again")
	}
	if d.Labels[annotations.DevHot] != annotations.DevHotEnabled {
		if rec == nil {
			return d, Untouched, nil, nil
		}
		strip(d, rec)
		return d, Reverted, nil, nil
	}
	if den := validateAnnotations(d); den != nil {
		return nil, "", nil, den
	}
	if rec != nil {
		strip(d, rec)
	}
	if den := checkReserved(d); den != nil {
		return nil, "", nil, den
	}
	warnings, den := inject(d, o)
	if den != nil {
		return nil, "", nil, den
	}
	return d, Injected, warnings, nil
}

// checkReserved denies an object that, once stripped of our own injection,
// still uses a name we inject under.
func checkReserved(d *appsv1.Deployment) *Denial {
	spec := &d.Spec.Template.Spec
	for i, c := range spec.InitContainers {
		if c.Name == sidecar.ContainerName {
			return reserved(fmt.Sprintf("spec.template.spec.initContainers[%d].name", i), c.Name)
		}
	}
	for i, c := range spec.Containers {
		if c.Name == sidecar.ContainerName {
			return reserved(fmt.Sprintf("spec.template.spec.containers[%d].name", i), c.Name)
		}
	}
	for i, v := range spec.Volumes {
		if v.Name == sidecar.WorkspaceVolume || v.Name == sidecar.TokenVolume {
			return reserved(fmt.Sprintf("spec.template.spec.volumes[%d].name", i), v.Name)
		}
	}
	return nil
}

func reserved(field, name string) *Denial {
	return deny(ReasonReservedName, field,
		fmt.Sprintf("%q is reserved for what aether-devhot injects", name),
		"rename it (reserved: %s, %s, %s)", sidecar.ContainerName, sidecar.WorkspaceVolume, sidecar.TokenVolume)
}
