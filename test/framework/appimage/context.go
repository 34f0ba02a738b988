package appimage

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// buildContext is the directory's files that COPY may read: every path
// that .dockerignore does not exclude, with normalized modes.
type buildContext struct {
	entries map[string]Entry // by slash path relative to the directory
	paths   []string         // sorted
}

func readContext(dir string) (*buildContext, error) {
	ig, err := readDockerignore(dir)
	if err != nil {
		return nil, err
	}
	negations := false
	for _, p := range ig {
		negations = negations || p.negate
	}
	ctx := &buildContext{entries: map[string]Entry{}}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ig.excluded(rel) {
			if d.IsDir() && !negations {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Path: rel, Mode: info.Mode().Type() | info.Mode().Perm()}
		switch {
		case d.IsDir():
		case info.Mode()&fs.ModeSymlink != 0:
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if e.Data, err = os.ReadFile(p); err != nil {
				return err
			}
		default:
			return nil
		}
		ctx.entries[rel] = normalize(e)
		ctx.paths = append(ctx.paths, rel)
		return nil
	})
	sort.Strings(ctx.paths)
	return ctx, err
}

// tree is what the context has at rel: its entries relative to rel, rel
// itself first as ".", and whether it is a directory ("." is the whole
// context).
func (c *buildContext) tree(rel string) ([]Entry, bool) {
	if rel != "." {
		top := c.entries[rel]
		if !top.IsDir() {
			top.Path = "."
			return []Entry{top}, false
		}
	}
	out := []Entry{Dir(".", 0o755, 0, 0)}
	for _, p := range c.paths {
		if rel == "." || strings.HasPrefix(p, rel+"/") {
			e := c.entries[p]
			if rel != "." {
				e.Path = strings.TrimPrefix(p, rel+"/")
			}
			out = append(out, e)
		}
	}
	return out, true
}
