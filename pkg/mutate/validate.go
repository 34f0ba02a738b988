package mutate

import (
	"fmt"
	"net/url"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/digest"
)

func annotationField(key string) string {
	return fmt.Sprintf("metadata.annotations[%s]", key)
}

// validateAnnotations checks the user-set annotations of a labelled
// Deployment. A bad one is denied at admission, where kubectl shows the
// message, rather than failing later inside every pod.
func validateAnnotations(d *appsv1.Deployment) *Denial {
	ann := d.Annotations
	value, hasDigest := ann[annotations.Digest]
	if hasDigest && !digest.Valid(value) {
		return deny(ReasonBadAnnotation, annotationField(annotations.Digest),
			fmt.Sprintf("%q is not sha256:<64 lowercase hex>", value),
			"set it to the artifact's digest, e.g. %s=sha256:$(sha256sum app.tar.gz | cut -c1-64)", annotations.Digest)
	}
	raw, hasURL := ann[annotations.ArtifactURL]
	if hasURL {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return deny(ReasonBadAnnotation, annotationField(annotations.ArtifactURL),
				fmt.Sprintf("%q is not an absolute http or https URL", raw),
				"set it to the URL the pods download the .tar.gz from, e.g. http://store.dev.svc/app.tar.gz")
		}
	}
	if hasDigest && !hasURL {
		return deny(ReasonBadAnnotation, annotationField(annotations.ArtifactURL),
			"is missing while "+annotations.Digest+" is set",
			"set both annotations in one command: kubectl annotate deploy %s %s=... %s=...",
			d.Name, annotations.Digest, annotations.ArtifactURL)
	}
	if v, ok := ann[annotations.FetchIntervalSec]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return deny(ReasonBadAnnotation, annotationField(annotations.FetchIntervalSec),
				fmt.Sprintf("%q is not a whole number of seconds of 1 or more", v),
				"set it to e.g. \"5\", or remove it for the default")
		}
	}
	if v, ok := ann[annotations.Entrypoint]; ok {
		if _, ok := cleanEntry(v); !ok {
			return deny(ReasonBadAnnotation, annotationField(annotations.Entrypoint),
				fmt.Sprintf("%q is not a path inside the artifact", v),
				"set it relative to the artifact root, e.g. server.js or src/index.mjs")
		}
	}
	if _, err := readRecord(ann); err != nil {
		return deny(ReasonBadAnnotation, annotationField(annotations.Injected),
			"is written by the webhook and cannot be read: "+err.Error(),
			"remove the annotation and apply the original manifest again")
	}
	return nil
}
