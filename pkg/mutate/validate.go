package mutate

import (
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

func annotationField(key string) string {
	return fmt.Sprintf("metadata.annotations[%s]", key)
}

// validateAnnotations checks the user-set annotations of a labelled
// Deployment. A bad one is denied at admission, where kubectl shows the
// message, rather than failing later inside every pod.
// problem is what a parser of package annotations says is wrong; the
// denial names the annotation itself.
func problem(err error) string {
	if e, ok := errors.AsType[*annotations.Error](err); ok {
		return e.Problem
	}
	return err.Error()
}

func validateAnnotations(d *appsv1.Deployment) *Denial {
	ann := d.Annotations
	value, hasDigest := ann[annotations.Digest]
	if _, err := annotations.ParseDigest(value); hasDigest && err != nil {
		return deny(ReasonBadAnnotation, annotationField(annotations.Digest), problem(err),
			"set it to the artifact's digest, e.g. %s=sha256:$(sha256sum app.tar.gz | cut -c1-64)", annotations.Digest)
	}
	raw, hasURL := ann[annotations.ArtifactURL]
	if _, err := annotations.ParseArtifactURL(raw); hasURL && err != nil {
		return deny(ReasonBadAnnotation, annotationField(annotations.ArtifactURL), problem(err),
			"set it to the URL the pods download the .tar.gz from, with no credentials, e.g. http://store.dev.svc/app.tar.gz, or to an OCI artifact by digest, oci://<registry>/<repo>@sha256:<manifest digest>")
	}
	if hasDigest && !hasURL {
		return deny(ReasonBadAnnotation, annotationField(annotations.ArtifactURL),
			"is missing while "+annotations.Digest+" is set",
			"set both annotations in one command: kubectl annotate deploy %s %s=... %s=...",
			d.Name, annotations.Digest, annotations.ArtifactURL)
	}
	if v, ok := ann[annotations.FetchIntervalSec]; ok {
		if _, err := annotations.ParseFetchInterval(v); err != nil {
			return deny(ReasonBadAnnotation, annotationField(annotations.FetchIntervalSec), problem(err),
				"set it to e.g. \"5\", or remove it for the default")
		}
	}
	if v, ok := ann[annotations.HealthTimeoutSec]; ok {
		if _, err := annotations.ParseHealthTimeout(v); err != nil {
			return deny(ReasonBadAnnotation, annotationField(annotations.HealthTimeoutSec), problem(err),
				"set it to e.g. \"60\" for an app that takes a while to come up, or remove it for the default of %d", annotations.DefaultHealthTimeoutSec)
		}
	}
	if v, ok := ann[annotations.Entrypoint]; ok {
		if _, ok := cleanEntry(v); !ok {
			return deny(ReasonBadAnnotation, annotationField(annotations.Entrypoint),
				fmt.Sprintf("%q is not a path inside the artifact", v),
				"set it relative to the artifact root, e.g. server.js or src/index.mjs")
		}
	}
	return nil
}
