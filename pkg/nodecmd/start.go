// Package nodecmd reads how a container starts Node.js from its command line
// (DESIGN.md rule 5), and writes the command line that starts the same app
// under `node --watch` with aether-devhot's boot script in place of the
// entry script, keeping everything else: wrappers (tini, dumb-init,
// docker-entrypoint.sh), the node binary's path, node's flags, the
// script's arguments, a shell line's earlier steps.
//
// It is pure: a package-manager script (`npm start`) is resolved from the
// package.json scripts that the caller read from the image.
package nodecmd

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Start is a container's command line read as how it starts Node.
type Start struct {
	argv []string
	// Wrappers are the words before the program that are kept as they are:
	// tini --, dumb-init, docker-entrypoint.sh, env NAME=value, gosu user.
	// In a shell line, the wrappers of its last command.
	Wrappers []string
	// Node is set when the command runs a script file with node.
	Node *Invocation
	// Script is set when the command runs a package-manager script, which
	// ResolveScript turns into an Invocation.
	Script *PackageScript
	// Shell is set when the command is `sh -c '<line>'` and node (or the
	// package manager) is the line's last command.
	Shell *ShellLine
}

// PackageScript is a package-manager script run: `npm start`,
// `npm run <name>`, `yarn <name>`, `pnpm <name>`, `node --run <name>`.
type PackageScript struct {
	// Manager is npm, yarn, pnpm or node.
	Manager string
	// Name is the script's name in package.json.
	Name string
	// Args are the arguments passed on to the script.
	Args []string
	// argWords are Args as written in a shell line, kept raw so that
	// expansions such as "$PORT" still expand.
	argWords []word
}

// ShellLine is the line of `sh -c '<line>'`.
type ShellLine struct {
	// Index is the position of the line in the command line.
	Index int
	// Line is the line as written.
	Line string
	// Exec is set when the last command starts with `exec`.
	Exec  bool
	words []word
	// prog is the index in words of the program: node's binary (or its
	// first flag after docker-entrypoint.sh), or the package manager.
	prog int
}

// NotNodeError says that a command line does not run Node at all: its
// container is not a Node.js app.
type NotNodeError struct{ Program string }

func (e *NotNodeError) Error() string {
	if e.Program == "" {
		return "it runs no program"
	}
	return fmt.Sprintf("it runs %s, not node or a package manager", e.Program)
}

// UnsupportedError says that a command line runs Node in a way that cannot
// be put under `node --watch`: inline code, the REPL, a shell line whose
// last step is not a plain command, a package script that is not
// `node <file>`. Why is a phrase for a denial.
type UnsupportedError struct{ Why string }

func (e *UnsupportedError) Error() string { return e.Why }

func unsupported(format string, args ...any) error {
	return &UnsupportedError{Why: fmt.Sprintf(format, args...)}
}

// IsNotNode reports whether err says the command does not run Node.
func IsNotNode(err error) bool {
	var nn *NotNodeError
	return errors.As(err, &nn)
}

// Parse reads argv, the whole command line the container runs (command and
// args, or the image's entrypoint and cmd in their place).
func Parse(argv []string) (Start, error) {
	s, err := parseArgv(argv, 0)
	s.argv = argv
	return s, err
}

// maxNesting bounds shells inside shells and scripts that run scripts.
const maxNesting = 4

func parseArgv(argv []string, depth int) (Start, error) {
	var s Start
	if depth > maxNesting {
		return s, unsupported("it nests shells or scripts more than %d deep", maxNesting)
	}
	i, implicitNode, err := skipWrappers(argv)
	if err != nil {
		return s, err
	}
	s.Wrappers = argv[:i]
	rest := argv[i:]
	if len(rest) == 0 {
		if implicitNode {
			return s, unsupported("docker-entrypoint.sh runs node with no script file (the REPL)")
		}
		return s, &NotNodeError{}
	}
	prog := rest[0]
	switch base := path.Base(prog); {
	case implicitNode && isScriptFile(prog):
		s.Node, s.Script, err = parseNode("", rest)
	case IsNodeBinary(prog):
		s.Node, s.Script, err = parseNode(prog, rest[1:])
	case base == "npm" || base == "yarn" || base == "pnpm":
		s.Script, err = parseManager(base, rest[1:])
	case base == "sh" || base == "bash" || base == "ash" || base == "dash" || base == "zsh":
		return parseShell(argv, i, depth)
	default:
		return s, &NotNodeError{Program: prog}
	}
	return s, err
}

// skipWrappers returns the index of the program after the wrappers that
// start argv, and whether the last wrapper was docker-entrypoint.sh, which
// prepends node to a first word that is a flag or not a command.
func skipWrappers(argv []string) (int, bool, error) {
	i := 0
	implicit := false
	for i < len(argv) {
		wrapper := true
		switch path.Base(argv[i]) {
		case "tini", "tini-static":
			i++
			for i < len(argv) && strings.HasPrefix(argv[i], "-") {
				a := argv[i]
				i++
				if a == "--" {
					break
				}
				if a == "-p" || a == "-e" || a == "-l" {
					i++
				}
			}
		case "dumb-init":
			i++
			for i < len(argv) && strings.HasPrefix(argv[i], "-") {
				a := argv[i]
				i++
				if a == "--" {
					break
				}
				if a == "-r" || a == "--rewrite" {
					i++
				}
			}
		case "docker-entrypoint.sh":
			i++
			implicit = true
			continue
		case "env":
			i++
			for i < len(argv) && strings.Contains(argv[i], "=") && !strings.HasPrefix(argv[i], "-") {
				i++
			}
			if i < len(argv) && strings.HasPrefix(argv[i], "-") {
				return 0, false, unsupported("env %s changes the environment in a way aether-devhot does not follow", argv[i])
			}
		case "gosu", "su-exec":
			i += 2
		default:
			wrapper = false
		}
		if !wrapper {
			return i, implicit, nil
		}
		implicit = false
	}
	return min(i, len(argv)), implicit, nil
}

// managerCommands are yarn's and pnpm's own commands; any other word
// names a script.
var managerCommands = []string{"install", "i", "add", "remove", "upgrade", "update", "ci", "exec", "dlx", "x", "create", "init", "link", "node", "why", "info"}

// managerOutputFlags only change what a package manager prints; the
// rewrite runs node directly and drops them.
var managerOutputFlags = map[string]bool{
	"-s": true, "--silent": true, "-q": true, "--quiet": true,
	"--no-update-notifier": true, "--loglevel": true, "--if-present": true,
}

func isManagerOutputFlag(a string) bool {
	name, _, _ := strings.Cut(a, "=")
	return managerOutputFlags[name]
}

// parseManager reads the arguments of npm, yarn or pnpm.
func parseManager(manager string, args []string) (*PackageScript, error) {
	ps := &PackageScript{Manager: manager}
	i := 0
	next := func() (string, bool) {
		for i < len(args) {
			a := args[i]
			i++
			if a == "--" {
				return "", false
			}
			if strings.HasPrefix(a, "-") {
				if !isManagerOutputFlag(a) {
					return a, false
				}
				if a == "--loglevel" {
					i++
				}
				continue
			}
			return a, true
		}
		return "", false
	}
	cmd, ok := next()
	if !ok {
		if cmd != "" {
			return nil, unsupported("%s %s is a flag aether-devhot does not follow", manager, cmd)
		}
		return nil, unsupported("%s runs no script", manager)
	}
	switch {
	case cmd == "start":
		ps.Name = "start"
	case cmd == "run" || cmd == "run-script" || cmd == "rum" || cmd == "urn":
		name, ok := next()
		if !ok {
			return nil, unsupported("%s %s names no script", manager, cmd)
		}
		ps.Name = name
	case manager == "npm" || slices.Contains(managerCommands, cmd):
		return nil, unsupported("%s %s does not run a package script", manager, cmd)
	default:
		ps.Name = cmd // yarn <script>, pnpm <script>
	}
	rest := args[i:]
	if manager == "npm" {
		// npm takes its own flags up to --; the rest goes to the script.
		for j, a := range rest {
			if a == "--" {
				ps.Args = append(ps.Args, rest[j+1:]...)
				break
			}
			if strings.HasPrefix(a, "-") {
				if isManagerOutputFlag(a) {
					continue
				}
				return nil, unsupported("npm %s is a flag aether-devhot does not follow (pass script arguments after --)", a)
			}
			ps.Args = append(ps.Args, a)
		}
		return ps, nil
	}
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	ps.Args = slices.Clone(rest)
	return ps, nil
}

// parseShell reads `sh [-flags] -c '<line>' [$0 [args]]`, which starts at
// argv[i].
func parseShell(argv []string, i, depth int) (Start, error) {
	var s Start
	j := i + 1
	hasC := false
	for ; j < len(argv) && strings.HasPrefix(argv[j], "-") && argv[j] != "-" && argv[j] != "--"; j++ {
		if !strings.HasPrefix(argv[j], "--") && strings.Contains(argv[j], "c") {
			hasC = true
			j++
			break
		}
	}
	if !hasC {
		return s, unsupported("%s runs a script file, not a -c line that ends in node", path.Base(argv[i]))
	}
	if j >= len(argv) {
		return s, unsupported("%s -c has no line", path.Base(argv[i]))
	}
	line := argv[j]
	words, err := lastCommand(line)
	if err != nil {
		return s, unsupported("the %s -c line cannot be followed: %v", path.Base(argv[i]), err)
	}
	sl := &ShellLine{Index: j, Line: line, words: words}
	// Assignments and exec stay in the line as written.
	k := 0
	for k < len(words) && isAssignment(words[k]) {
		k++
	}
	if k < len(words) && words[k].value == "exec" {
		sl.Exec = true
		k++
	}
	vals := make([]string, 0, len(words)-k)
	for _, w := range words[k:] {
		vals = append(vals, w.value)
	}
	if len(vals) > 0 && words[k].dynamic {
		return s, unsupported("the last command of the %s -c line runs %s, which only the shell can expand", path.Base(argv[i]), words[k].raw)
	}
	inner, err := parseArgv(vals, depth+1)
	if err != nil {
		if IsNotNode(err) {
			return s, &NotNodeError{Program: firstOr(vals, "")}
		}
		return s, err
	}
	if inner.Shell != nil {
		return s, unsupported("a shell line runs another shell")
	}
	s.Wrappers = argv[:i]
	s.Shell = sl
	s.Node, s.Script = inner.Node, inner.Script
	sl.prog = k + len(inner.Wrappers)
	if s.Node != nil {
		if w := words[len(words)-len(s.Node.Args)-1]; w.dynamic {
			return s, unsupported("the script file %s in the %s -c line is only known once the shell expands it", w.raw, path.Base(argv[i]))
		}
	}
	if s.Script != nil {
		s.Script.argWords = words[len(words)-len(s.Script.Args):]
	}
	return s, nil
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}
