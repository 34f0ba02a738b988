package appimage

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
)

// ignorePattern is one line of a .dockerignore.
type ignorePattern struct {
	re     *regexp.Regexp
	negate bool
}

// ignorer decides which paths of the build context a .dockerignore
// excludes, with Docker's rules: patterns are relative to the context's
// root and cleaned, * and ? do not cross a slash, ** matches any number of
// directories, a pattern that matches a directory excludes what it holds,
// ! re-includes, and the last matching line wins.
type ignorer []ignorePattern

// readDockerignore reads dir/.dockerignore; none excludes nothing.
func readDockerignore(dir string) (ignorer, error) {
	b, err := os.ReadFile(path.Join(dir, ".dockerignore"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ig ignorer
	for n, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		p := ignorePattern{}
		if strings.HasPrefix(l, "!") {
			p.negate, l = true, strings.TrimSpace(l[1:])
		}
		l = strings.TrimPrefix(path.Clean("/"+l), "/")
		re, err := patternRegexp(l)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q: %w", path.Join(dir, ".dockerignore"), n+1, l, err)
		}
		p.re = re
		ig = append(ig, p)
	}
	return ig, nil
}

// patternRegexp translates a .dockerignore pattern into a regexp over slash
// paths.
func patternRegexp(p string) (*regexp.Regexp, error) {
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' {
				i++
				re.WriteString("(.*/)?")
			} else {
				re.WriteString(".*")
			}
		case c == '*':
			re.WriteString("[^/]*")
		case c == '?':
			re.WriteString("[^/]")
		case c == '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated [")
			}
			class := p[i+1 : i+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			re.WriteString("[" + class + "]")
			i += end
		case c == '\\' && i+1 < len(p):
			i++
			re.WriteString(regexp.QuoteMeta(string(p[i])))
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("$")
	return regexp.Compile(re.String())
}

// excluded reports whether the context path rel (slash, relative) is
// excluded: by a pattern matching it or one of its parent directories.
func (ig ignorer) excluded(rel string) bool {
	out := false
	for _, p := range ig {
		for q := rel; q != "." && q != "/" && q != ""; q = path.Dir(q) {
			if p.re.MatchString(q) {
				out = !p.negate
				break
			}
		}
	}
	return out
}
