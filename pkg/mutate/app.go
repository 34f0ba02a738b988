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

// rewriteCommand applies rule 5 to the app container: node runs boot.cjs
// under --watch and boot.cjs loads AETHER_ENTRY from the live release.
func rewriteCommand(d *appsv1.Deployment, app int, rec *record) ([]string, *Denial) {
	c := &d.Spec.Template.Spec.Containers[app]
	argv := slices.Concat(c.Command, c.Args)
	nc, isNode := parseNode(argv)
	var warnings []string

	entry, annotated := d.Annotations[annotations.Entrypoint]
	if annotated {
		entry, _ = cleanEntry(entry) // validated already
		if !isNode || nc.Script == "" {
			warnings = append(warnings, fmt.Sprintf(
				"aether-devhot: container %q command %q replaced by node --watch; it now runs %s=%q directly",
				c.Name, strings.Join(argv, " "), annotations.Entrypoint, entry))
			nc = nodeCommand{Node: "node"}
		}
	} else {
		field := fmt.Sprintf("spec.template.spec.containers[%d].command", app)
		fix := fmt.Sprintf("add the annotation %s=<entry script relative to the artifact root>, e.g. %s=server.js",
			annotations.Entrypoint, annotations.Entrypoint)
		if !isNode || nc.Script == "" {
			problem := fmt.Sprintf("%q does not run `node <script>`, so the entry script is unknown", strings.Join(argv, " "))
			if len(argv) == 0 {
				problem = "is not set, so the entry script is unknown"
			}
			return nil, deny(ReasonNoEntrypoint, field, problem, "%s", fix)
		}
		e, ok := entryFromScript(nc.Script, rec.Workspace, c.WorkingDir)
		if !ok {
			return nil, deny(ReasonNoEntrypoint, field,
				fmt.Sprintf("script %q is outside the workspace %s", nc.Script, rec.Workspace), "%s", fix)
		}
		entry = e
		warnings = append(warnings, fmt.Sprintf("aether-devhot: %s not set: using %q parsed from container %q command; set the annotation to override",
			annotations.Entrypoint, entry, c.Name))
	}

	rec.Command, rec.Args = c.Command, c.Args
	c.Command, c.Args = nc.rewrite(rec.Workspace), nil
	c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == sidecar.EnvEntry })
	c.Env = append(c.Env, corev1.EnvVar{Name: sidecar.EnvEntry, Value: entry})
	return warnings, nil
}
