package mutate

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
)

// appContainer picks the app container (rule 6): the one aether.dev/container
// names, else the template's kubectl.kubernetes.io/default-container, else
// the only container that runs Node, by its command or its image's. It
// returns how that container starts, or why that cannot be read; a
// Deployment where no single container can be chosen is denied, listing
// what each container runs.
func appContainer(d *appsv1.Deployment, images imageconfig.Source) (int, *appStart, *startError, *Denial) {
	cs := d.Spec.Template.Spec.Containers
	if len(cs) == 0 {
		return 0, nil, nil, deny(ReasonMalformed, "spec.template.spec.containers", "is empty", "add the Node.js app container")
	}
	chosen := -1
	if name, ok := d.Annotations[annotations.Container]; ok {
		if chosen = indexOf(cs, name); chosen < 0 {
			return 0, nil, nil, deny(ReasonUnknownContainer, annotationField(annotations.Container),
				fmt.Sprintf("names %q, which is not in spec.template.spec.containers", name),
				"set it to one of: %s", containerNames(cs))
		}
	} else if name, ok := d.Spec.Template.Annotations[annotations.DefaultContainer]; ok && indexOf(cs, name) >= 0 {
		chosen = indexOf(cs, name)
	} else if len(cs) == 1 {
		chosen = 0
	}
	if chosen >= 0 {
		st, serr := readStart(&cs[chosen], chosen, images)
		return chosen, st, serr, nil
	}

	type reading struct {
		st  *appStart
		err *startError
	}
	readings := make([]reading, len(cs))
	var node, unknown []int
	for i := range cs {
		st, serr := readStart(&cs[i], i, images)
		readings[i] = reading{st, serr}
		switch {
		case serr == nil || serr.unsupported != nil:
			node = append(node, i)
		case serr.lookup != nil:
			unknown = append(unknown, i)
		}
	}
	if len(node) == 1 && len(unknown) == 0 {
		r := readings[node[0]]
		return node[0], r.st, r.err, nil
	}
	what := make([]string, len(cs))
	for i, r := range readings {
		what[i] = fmt.Sprintf("%s (%s)", cs[i].Name, describeStart(r.st, r.err))
	}
	problem := "has several containers and aether-devhot cannot tell which is the Node.js app: " + strings.Join(what, "; ")
	if len(node) == 0 && len(unknown) == 0 {
		problem = "has no container that runs Node.js: " + strings.Join(what, "; ")
	}
	return 0, nil, nil, deny(ReasonAmbiguousContainer, "spec.template.spec.containers", problem,
		"add the annotation %s=<the app container>, one of: %s", annotations.Container, containerNames(cs))
}

func indexOf(cs []corev1.Container, name string) int {
	return slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name })
}

func containerNames(cs []corev1.Container) string {
	if len(cs) == 0 {
		return "(none: remove the annotation)"
	}
	n := make([]string, len(cs))
	for i, c := range cs {
		n[i] = c.Name
	}
	return strings.Join(n, ", ")
}
