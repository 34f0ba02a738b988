package mutate

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
	"github.com/aether-dev/aether-devhot/pkg/nodecmd"
)

// appStart is how one container starts, as far as the mutation needs it.
type appStart struct {
	// index is the container's index in spec.template.spec.containers.
	index int
	// argv is the whole command line the container runs.
	argv []string
	// field is the field that argv comes from, for denials: command, args,
	// or image (the image's ENTRYPOINT and CMD).
	field string
	// start is argv read; inv is what runs the entry script (start.Node,
	// or the package script resolved).
	start nodecmd.Start
	inv   *nodecmd.Invocation
	// workingDir is the container's workingDir, else the image's WORKDIR
	// when the image was looked up; "" when unknown.
	workingDir string
	// image is the image's config when it was looked up.
	image *imageconfig.Config
}

// startError is why a container's start cannot be rewritten. Exactly one
// of its causes is set.
type startError struct {
	// notNode: the container does not run Node.
	notNode *nodecmd.NotNodeError
	// unsupported: it runs Node in a way that cannot go under --watch.
	unsupported *nodecmd.UnsupportedError
	// lookup: the image had to be read to know, and could not be; script
	// is the package-manager run it was read for, if any.
	lookup *imageconfig.LookupError
	script string
	// field is the field the denial names, and argv the command line read
	// from it (nil for a failed lookup).
	field string
	argv  []string
}

func (e *startError) Error() string {
	switch {
	case e.notNode != nil:
		return e.notNode.Error()
	case e.unsupported != nil:
		return e.unsupported.Error()
	}
	return e.lookup.Error()
}

// containerField names a field of container i.
func containerField(i int, field string) string {
	return fmt.Sprintf("spec.template.spec.containers[%d].%s", i, field)
}

// readStart works out how container i starts. It reads the image's config
// only when the container leaves the command to its image, and the image's
// package.json only for a package-manager script.
func readStart(c *corev1.Container, i int, images imageconfig.Source) (*appStart, *startError) {
	st := &appStart{index: i, workingDir: c.WorkingDir}
	lookup := func(err error, field string) *startError {
		le, ok := errors.AsType[*imageconfig.LookupError](err)
		if !ok {
			le = &imageconfig.LookupError{Image: c.Image, Reason: imageconfig.Invalid, Err: err}
		}
		return &startError{lookup: le, field: field}
	}
	config := func() (*imageconfig.Config, *startError) {
		if st.image != nil {
			return st.image, nil
		}
		cfg, err := images.Config(c.Image)
		if err != nil {
			return nil, lookup(err, containerField(i, "image"))
		}
		st.image = cfg
		if st.workingDir == "" {
			st.workingDir = cfg.WorkingDir
		}
		return cfg, nil
	}
	switch {
	case len(c.Command) > 0:
		st.argv, st.field = slices.Concat(c.Command, c.Args), "command"
	default:
		field := "command"
		if len(c.Args) > 0 {
			field = "args"
		}
		cfg, serr := config()
		if serr != nil {
			serr.field = containerField(i, field)
			return nil, serr
		}
		args := cfg.Cmd
		if len(c.Args) > 0 {
			args = c.Args
		}
		st.argv, st.field = slices.Concat(cfg.Entrypoint, args), "image"
		if field == "args" {
			st.field = "args"
		}
	}
	start, err := nodecmd.Parse(st.argv)
	if err != nil {
		return nil, classify(err, st)
	}
	st.start, st.inv = start, start.Node
	if ps := start.Script; ps != nil {
		forScript := func(serr *startError) *startError {
			serr.field, serr.script = containerField(i, st.field), ps.Manager+" "+ps.Name
			if ps.Manager == "node" {
				serr.script = "node --run " + ps.Name
			}
			return serr
		}
		if _, serr := config(); serr != nil {
			return nil, forScript(serr)
		}
		dir := st.workingDir
		if dir == "" {
			dir = "/"
		}
		pkg, err := images.PackageJSON(c.Image, dir)
		var scripts map[string]string
		switch {
		case err == nil:
			scripts = pkg.Scripts
		case imageconfig.ReasonOf(err) != imageconfig.NotFound:
			return nil, forScript(lookup(err, ""))
		}
		if st.inv, err = nodecmd.ResolveScript(start.Script, scripts); err != nil {
			return nil, classify(err, st)
		}
	}
	return st, nil
}

func classify(err error, st *appStart) *startError {
	se := &startError{field: containerField(st.index, st.field), argv: st.argv}
	if nn, ok := errors.AsType[*nodecmd.NotNodeError](err); ok {
		se.notNode = nn
	} else if u, ok := errors.AsType[*nodecmd.UnsupportedError](err); ok {
		se.unsupported = u
	} else {
		se.unsupported = &nodecmd.UnsupportedError{Why: err.Error()}
	}
	return se
}

// describeStart says what a start runs, for denials that list containers.
func describeStart(st *appStart, err *startError) string {
	switch {
	case err == nil:
		return "runs node " + st.inv.Script
	case err.notNode != nil:
		return strings.TrimPrefix(err.notNode.Error(), "it ")
	case err.unsupported != nil:
		return "runs Node in a way aether-devhot cannot follow: " + err.unsupported.Error()
	}
	return "unknown: " + err.lookup.Error()
}
