package pack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// IgnoreFile is read from the root of the packed directory; it has
// gitignore syntax, and its rules come after every .gitignore's.
const IgnoreFile = ".devhotignore"

// GitIgnoreFile is read in every directory of the tree, as git reads it.
const GitIgnoreFile = ".gitignore"

// Options of Dir and LoadIgnore.
type Options struct {
	// IncludeNodeModules packs node_modules directories, which are left out
	// by default: images usually install them, and they are large.
	IncludeNodeModules bool
	// Only, when set, packs these slash-separated paths relative to the
	// root (a build's output, such as dist), each at its place, and the
	// root's package.json, instead of the whole tree. The .gitignore files
	// do not apply then (a build's output is usually in them);
	// .devhotignore and the secret patterns still do.
	Only []string
}

// secretPatterns name files that hold credentials. They are never packed
// unless IgnoreFile re-includes them by name ("!.env.example"): an artifact
// is readable by whatever reads the store, and a .env or an .npmrc carries
// passwords and tokens.
var secretPatterns = []string{".env*", ".npmrc", "*.pem", "*.key", "id_*"}

// rule is one line of an ignore file, or a default.
type rule struct {
	pattern gitignore.Pattern
	// where says where the rule comes from: "default" or "<file>:<line>",
	// and line is its text, for Verdict.Why.
	where, line string
	// name is set for a negation in IgnoreFile without wildcards: the path
	// or base name it names, the only rule that can bring a secret back.
	name string
}

// names reports whether r re-includes the file rel, whose base name is
// base, by its name.
func (r *rule) names(rel, base string) bool {
	return r.name != "" && (r.name == rel || (!strings.Contains(r.name, "/") && r.name == base))
}

// Ignore decides which paths of a tree are left out of its artifact, and
// says why.
type Ignore struct {
	rules []rule
}

// Verdict is Ignore's answer for one path.
type Verdict struct {
	// Out is set when the path is left out; Why then says which rule.
	Out bool
	Why string
	// Secret is set when the path is left out because it looks like a
	// secret.
	Secret bool
}

// LoadIgnore reads the tree's rules, in git's order of precedence, the
// last match winning: the defaults (node_modules/, unless
// o.IncludeNodeModules), every .gitignore from the root down (not inside
// directories they leave out, as git does not read those; none with
// o.Only), then root's IgnoreFile. .git is always left out, and so are files that look like
// secrets unless IgnoreFile re-includes them by name.
func LoadIgnore(root string, o Options) (*Ignore, error) {
	i := &Ignore{}
	if !o.IncludeNodeModules {
		i.rules = append(i.rules, rule{pattern: gitignore.ParsePattern("node_modules/", nil), where: "default", line: "node_modules/ (pack them with --include-node-modules)"})
	}
	var gitRules []rule
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if len(o.Only) > 0 {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." {
			// The rules read so far, which are those of the directory's
			// ancestors, decide whether git would look inside it.
			if v := (&Ignore{rules: slices.Concat(i.rules, gitRules)}).check(rel, true, false); v.Out {
				return filepath.SkipDir
			}
		}
		var domain []string
		if rel != "." {
			domain = strings.Split(rel, "/")
		}
		rs, err := readRules(filepath.Join(p, GitIgnoreFile), path.Join(rel, GitIgnoreFile), domain, false)
		gitRules = append(gitRules, rs...)
		return err
	})
	if err != nil {
		return nil, err
	}
	i.rules = append(i.rules, gitRules...)
	rs, err := readRules(filepath.Join(root, IgnoreFile), IgnoreFile, nil, true)
	if err != nil {
		return nil, err
	}
	i.rules = append(i.rules, rs...)
	return i, nil
}

// readRules parses one ignore file; a missing one has no rules.
func readRules(file, name string, domain []string, devhot bool) ([]rule, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var rs []rule
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		rs = append(rs, rule{
			pattern: gitignore.ParsePattern(line, domain),
			where:   fmt.Sprintf("%s:%d", strings.TrimPrefix(name, "./"), n+1),
			line:    line,
		})
		if devhot && strings.HasPrefix(line, "!") && !strings.ContainsAny(line[1:], "*?[") {
			rs[len(rs)-1].name = strings.TrimPrefix(strings.TrimSpace(line[1:]), "/")
		}
	}
	return rs, nil
}

// Match reports whether rel, a slash-separated path relative to the root,
// is left out. A directory's answer covers everything below it, as in git.
func (i *Ignore) Match(rel string, isDir bool) bool {
	return i.Check(rel, isDir).Out
}

// Check is Match with its reason.
func (i *Ignore) Check(rel string, isDir bool) Verdict {
	return i.check(rel, isDir, true)
}

func (i *Ignore) check(rel string, isDir, secrets bool) Verdict {
	parts := strings.Split(rel, "/")
	base := parts[len(parts)-1]
	if isDir && base == ".git" {
		return Verdict{Out: true, Why: ".git is never packed"}
	}
	var last *rule
	result := gitignore.NoMatch
	for j := len(i.rules) - 1; j >= 0; j-- {
		if m := i.rules[j].pattern.Match(parts, isDir); m != gitignore.NoMatch {
			last, result = &i.rules[j], m
			break
		}
	}
	if secrets && !isDir {
		if p := secretPattern(base); p != "" && (result != gitignore.Include || !last.names(rel, base)) {
			return Verdict{Out: true, Secret: true, Why: fmt.Sprintf("looks like a secret (%s); to pack it, add !%s to %s", p, rel, IgnoreFile)}
		}
	}
	if result == gitignore.Exclude {
		return Verdict{Out: true, Why: last.where + ": " + last.line}
	}
	return Verdict{}
}

// secretPattern returns the secret pattern that base matches, "" if none.
func secretPattern(base string) string {
	for _, p := range secretPatterns {
		if ok, _ := path.Match(p, base); ok {
			return p
		}
	}
	return ""
}

// IsIgnoreFile reports whether rel is a file whose change changes the
// rules: IgnoreFile at the root, or a .gitignore anywhere.
func IsIgnoreFile(rel string) bool {
	return rel == IgnoreFile || path.Base(rel) == GitIgnoreFile
}
