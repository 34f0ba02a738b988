package mutate

import (
	"fmt"
	"path"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// rewriteCommand applies rule 5 to the app container: its command line
// runs boot.cjs under `node --watch` in place of the entry script, keeping
// its wrappers, node binary, flags and arguments, and the manifest's args
// as they are where they are the line's tail. boot.cjs loads AETHER_ENTRY
// from the live release, or, with releaseZero, from the image's own app
// directory (AETHER_APP_DIR, which it returns) until the first push.
func rewriteCommand(d *appsv1.Deployment, app int, st *appStart, serr *startError, rec *record, releaseZero bool) (string, []string, *Denial) {
	c := &d.Spec.Template.Spec.Containers[app]
	boot := bootPath(rec.Workspace)
	entry, annotated := d.Annotations[annotations.Entrypoint]
	if annotated {
		entry, _ = cleanEntry(entry) // validated already
	}
	var warnings []string
	var argv []string
	appDir := sidecar.AppDirWorking
	switch {
	case serr != nil && (!annotated || serr.notNode != nil):
		return "", nil, startDenial(c, serr, annotated)
	case serr != nil:
		// The annotation names the entry of a start that cannot be
		// followed: run that file under node, keeping the manifest's args.
		argv = slices.Concat([]string{"node", "--watch", boot}, c.Args)
		was := strings.Join(slices.Concat(c.Command, c.Args), " ")
		if was == "" {
			was = "the image's ENTRYPOINT and CMD"
		}
		warnings = append(warnings, fmt.Sprintf(
			"aether-devhot: container %q: %s (%s); it now runs node --watch with %s=%q instead of %s",
			c.Name, serr.Error(), serr.field, annotations.Entrypoint, entry, was))
		if st != nil && st.workingDir != "" {
			appDir = st.workingDir
		}
	default:
		argv = st.start.Rewrite(boot, st.inv)
		var ok bool
		if annotated {
			appDir = annotatedAppDir(st, entry)
		} else if releaseZero {
			entry, appDir, ok = appEntry(st.inv.Script, st.workingDir)
		} else {
			entry, ok = entryFromScript(st.inv.Script, rec.Workspace, st.workingDir)
		}
		if !annotated {
			if !ok {
				return "", nil, deny(ReasonNoEntrypoint, containerField(app, st.field),
					fmt.Sprintf("runs the script %q, which is outside %s, where the releases are", st.inv.Script, rec.Workspace),
					"add the annotation %s=<entry script relative to the artifact root>, e.g. %s=server.js", annotations.Entrypoint, annotations.Entrypoint)
			}
			warnings = append(warnings, fmt.Sprintf("aether-devhot: %s not set: using %q, which container %q runs (%s); set the annotation to override",
				annotations.Entrypoint, entry, c.Name, startSource(st)))
		}
	}
	if releaseZero && appDir != sidecar.AppDirWorking {
		if under := mountsUnder(c, appDir, rec.Workspace); len(under) > 0 {
			warnings = append(warnings, fmt.Sprintf(
				"aether-devhot: container %q mounts %s under its app directory %s; a release runs from %s, so relative paths no longer reach those mounts (use absolute paths to them)",
				c.Name, strings.Join(under, ", "), appDir, path.Join(rec.Workspace, sidecar.CurrentLink)))
		}
	}

	rec.Command, rec.Args = c.Command, c.Args
	c.Command, c.Args = splitArgv(argv, c.Command, c.Args, st)
	setEnv(c, sidecar.EnvEntry, entry)
	if releaseZero {
		setEnv(c, sidecar.EnvAppDir, appDir)
	}
	return appDir, warnings, nil
}

// splitArgv puts the new command line back into command and args,
// changing as little as it can: a command (or, when the container sets
// none, the image's ENTRYPOINT) that still starts the line stays, and the
// rest becomes args; else the manifest's args stay where they end the
// line; else the whole line becomes the command.
func splitArgv(argv, command, args []string, st *appStart) ([]string, []string) {
	rest := func(n int) []string {
		if len(argv) == n {
			return nil
		}
		return argv[n:]
	}
	switch {
	case len(command) > 0 && hasPrefix(argv, command):
		return command, rest(len(command))
	case len(command) == 0 && st != nil && st.image != nil && hasPrefix(argv, st.image.Entrypoint):
		return nil, rest(len(st.image.Entrypoint))
	case len(args) > 0 && len(argv) > len(args) && slices.Equal(argv[len(argv)-len(args):], args):
		return argv[:len(argv)-len(args)], args
	}
	return argv, nil
}

func hasPrefix(s, prefix []string) bool {
	return len(s) >= len(prefix) && slices.Equal(s[:len(prefix)], prefix)
}

// setEnv sets name on c, last, replacing an earlier value.
func setEnv(c *corev1.Container, name, value string) {
	c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

// startSource says where a start was read, for the entry warning.
func startSource(st *appStart) string {
	var from string
	switch st.field {
	case "command":
		from = "its command"
	case "args":
		from = "its image's ENTRYPOINT with its args"
	default:
		from = "its image's ENTRYPOINT and CMD"
	}
	if s := st.start.Script; s != nil {
		from += fmt.Sprintf(", %s script %q of package.json", s.Manager, s.Name)
	}
	return from
}

// startDenial explains why the app container's start cannot be rewritten.
func startDenial(c *corev1.Container, serr *startError, annotated bool) *Denial {
	entryFix := fmt.Sprintf("add the annotation %s=<entry script relative to the app's directory>", annotations.Entrypoint)
	switch {
	case serr.notNode != nil:
		return deny(ReasonNotNode, serr.field, fmt.Sprintf("container %q %s", c.Name, serr.notNode.Error()),
			"label only Deployments of Node.js apps, or name the Node.js container with the annotation %s", annotations.Container)
	case serr.unsupported != nil:
		return deny(ReasonNoEntrypoint, serr.field, fmt.Sprintf("runs %q: %s", strings.Join(serr.argv, " "), serr.unsupported.Why),
			"set the container's command to `node [flags] <file> [args]`, or %s", entryFix)
	}
	le := serr.lookup
	cannot := fmt.Sprintf("image %s cannot be read (%s", le.Image, le.Reason)
	if le.Err != nil {
		cannot += ": " + le.Err.Error()
	}
	cannot += ")"
	var problem string
	switch {
	case serr.script != "":
		problem = fmt.Sprintf("runs `%s`, whose script is in the image's package.json, and %s", serr.script, cannot)
	case strings.HasSuffix(serr.field, ".args"):
		problem = "is set without a command, so the image's ENTRYPOINT decides, and " + cannot
	default:
		problem = "is not set, so the image decides, and " + cannot
	}
	fix := "set the container's command to the app's `node <file>` command"
	switch le.Reason {
	case imageconfig.Unauthorized:
		fix = "give the webhook a pull secret for that registry in its own namespace (chart value imagePullSecrets, flag --image-pull-secrets), or " + fix
	case imageconfig.Unreachable:
		fix = "let the webhook reach that registry, or " + fix
	case imageconfig.Disabled:
		fix = "the webhook runs with --image-lookup=false: " + fix
	}
	if !annotated {
		fix += ", or " + entryFix
	}
	field := serr.field
	if strings.HasSuffix(field, ".image") {
		field = strings.TrimSuffix(field, ".image") + ".command"
	}
	return deny(ReasonImageLookup, field, problem, "%s", fix)
}

// appEntry maps the script a container runs from its image to the entry
// (relative to the app's directory, which a push's root replaces) and that
// directory, for release zero. An unknown working directory leaves the
// directory to the app's working directory at start (AppDirWorking).
func appEntry(script, workingDir string) (entry, appDir string, ok bool) {
	if path.IsAbs(script) {
		if workingDir != "" && workingDir != "/" {
			if rel, in := within(script, workingDir); in && rel != "." {
				return rel, path.Clean(workingDir), true
			}
		}
		return path.Base(script), path.Dir(path.Clean(script)), true
	}
	if workingDir == "" {
		e, ok := cleanEntry(script)
		return e, sidecar.AppDirWorking, ok
	}
	abs := path.Join(workingDir, script)
	if rel, in := within(abs, workingDir); in && rel != "." {
		return rel, path.Clean(workingDir), true
	}
	return path.Base(abs), path.Dir(abs), true
}

// annotatedAppDir is the app's directory when aether.dev/entrypoint names
// the entry: where the script the container runs ends in that entry, the
// rest of its path; else its working directory.
func annotatedAppDir(st *appStart, entry string) string {
	script := st.inv.Script
	if !path.IsAbs(script) && st.workingDir != "" {
		script = path.Join(st.workingDir, script)
	}
	if dir, ok := strings.CutSuffix(path.Clean(script), "/"+entry); ok && path.IsAbs(script) {
		if dir == "" {
			dir = "/"
		}
		return dir
	}
	if st.workingDir != "" {
		return path.Clean(st.workingDir)
	}
	return sidecar.AppDirWorking
}

// scriptPath is the absolute path of the script st runs, "" when the
// working directory it is relative to is unknown.
func scriptPath(st *appStart) string {
	s := st.inv.Script
	switch {
	case path.IsAbs(s):
		return path.Clean(s)
	case st.workingDir != "":
		return path.Join(st.workingDir, s)
	}
	return ""
}

// entryFromScript maps the script of the original command to a path
// relative to the replaced initContainer's volume, which the app sees at
// workspace and which the releases replace; workingDir is where relative
// scripts are ("" if unknown).
func entryFromScript(script, workspace, workingDir string) (string, bool) {
	abs := script
	if !path.IsAbs(abs) {
		if workingDir == "" {
			return cleanEntry(script)
		}
		abs = path.Join(workingDir, script)
	}
	if rel, ok := within(abs, workspace); ok {
		return rel, true
	}
	if workingDir != "" {
		if rel, ok := within(abs, workingDir); ok {
			return rel, true
		}
	}
	return "", false
}

// within returns p relative to dir, if p is dir or below it.
func within(p, dir string) (string, bool) {
	p, dir = path.Clean(p), path.Clean(dir)
	if p == dir {
		return ".", true
	}
	if rel, ok := strings.CutPrefix(p, strings.TrimSuffix(dir, "/")+"/"); ok {
		return rel, true
	}
	return "", false
}

// cleanEntry accepts a relative path that stays inside the artifact root.
func cleanEntry(p string) (string, bool) {
	c := path.Clean(p)
	if p == "" || path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

// bootPath is boot.cjs as the app container sees it.
func bootPath(workspace string) string {
	return path.Join(workspace, sidecar.BootFile)
}
