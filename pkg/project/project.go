// Package project reads devhot.yaml, what a project declares once about
// how `kubectl devhot push` builds it and what it packs: a compiled
// service (TypeScript, a bundler) pushes its build output, not its source.
package project

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// File is read from the directory that push packs.
const File = "devhot.yaml"

// Config is devhot.yaml. Every field may also be set, or overridden, by
// push's flag of the same name.
type Config struct {
	// Build is a shell command (sh -c) that push runs in the project
	// directory before it packs; when it fails, its output is printed and
	// nothing is pushed.
	Build string `json:"build,omitempty"`
	// Out lists the paths, relative to the project directory, that are
	// packed instead of the whole tree, each at its place in it (so that
	// the image's entry script, dist/server.js, is found where the image
	// runs it): the build's output. package.json is packed with them, and
	// the .gitignore files do not apply to them.
	Out []string `json:"out,omitempty"`
	// WatchBuild is a long-running build (tsc --watch) that push --watch
	// runs instead of Build for its whole session, pushing whenever
	// something under Out changes.
	WatchBuild string `json:"watchBuild,omitempty"`
}

// Load reads dir's devhot.yaml; a project without one has the zero
// Config. Unknown fields and bad paths are errors that name the file.
func Load(dir string) (Config, error) {
	var c Config
	b, err := os.ReadFile(filepath.Join(dir, File))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := yaml.UnmarshalStrict(bytes.TrimSpace(b), &c); err != nil {
		return c, fmt.Errorf("%s: %w", File, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", File, err)
	}
	return c, nil
}

// Validate checks Out: each a clean relative path inside the project, not
// the project itself, and not one inside another.
func (c Config) Validate() error {
	for i, p := range c.Out {
		clean := path.Clean(filepath.ToSlash(p))
		switch {
		case p == "" || clean == "." || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../"):
			return fmt.Errorf("out[%d] %q: must be a path inside the project, such as dist", i, p)
		case clean != filepath.ToSlash(p):
			return fmt.Errorf("out[%d] %q: write it as %q", i, p, clean)
		}
		for j, q := range c.Out[:i] {
			if q == clean || strings.HasPrefix(clean, q+"/") || strings.HasPrefix(q, clean+"/") {
				return fmt.Errorf("out[%d] %q overlaps out[%d] %q", i, p, j, q)
			}
		}
	}
	if c.WatchBuild != "" && len(c.Out) == 0 {
		return errors.New("watchBuild needs out: the paths whose changes are pushed")
	}
	return nil
}

// Under reports whether rel, a slash-separated path relative to the
// project, is one of Out or inside one.
func (c Config) Under(rel string) bool {
	for _, o := range c.Out {
		if rel == o || strings.HasPrefix(rel, o+"/") {
			return true
		}
	}
	return false
}
