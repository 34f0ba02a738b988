package pack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// IgnoreFile is read from the root of the packed directory; it has
// gitignore syntax.
const IgnoreFile = ".devhotignore"

// Options of Dir and LoadIgnore.
type Options struct {
	// IncludeNodeModules packs node_modules directories, which are left out
	// by default: images usually install them, and they are large.
	IncludeNodeModules bool
}

// Ignore decides which paths of a tree are left out of its artifact.
type Ignore struct {
	matcher gitignore.Matcher
}

// LoadIgnore reads root's .devhotignore, if there is one. Before its rules
// come the defaults: node_modules (unless o.IncludeNodeModules), which a
// "!node_modules" line can bring back. .git is always left out.
func LoadIgnore(root string, o Options) (*Ignore, error) {
	var ps []gitignore.Pattern
	if !o.IncludeNodeModules {
		ps = append(ps, gitignore.ParsePattern("node_modules/", nil))
	}
	b, err := os.ReadFile(filepath.Join(root, IgnoreFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", IgnoreFile, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, nil))
	}
	return &Ignore{matcher: gitignore.NewMatcher(ps)}, nil
}

// Match reports whether rel, a slash-separated path relative to the root,
// is left out. A directory's answer covers everything below it, as in git.
func (i *Ignore) Match(rel string, isDir bool) bool {
	parts := strings.Split(rel, "/")
	if isDir && parts[len(parts)-1] == ".git" {
		return true
	}
	return i.matcher.Match(parts, isDir)
}
