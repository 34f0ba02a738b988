package nodecmd

import (
	"path"
	"strings"
)

// Invocation is one run of the node binary on a script file:
// `[env] node [flags] script [args]`.
type Invocation struct {
	// Binary is the node binary as written (node, /usr/local/bin/node,
	// /nodejs/bin/node); "" when docker-entrypoint.sh supplies it.
	Binary string
	// Flags are node's own flags, without --watch and --watch-path, which
	// the rewrite sets itself.
	Flags []string
	// Script is the script file as written, relative to the working
	// directory or absolute.
	Script string
	// Args are the script's arguments.
	Args []string
	// Line is set for a package script that needs a shell to run as
	// written: one with environment assignments (NODE_ENV=production node
	// x) or expansions ($PORT). It is the script's line.
	Line string

	// The words of Line, where node's program word is among them, and
	// whether the line already starts it with exec.
	words []word
	prog  int
	exec  bool
}

// valueFlags take their value as the next argument when written without
// "=".
var valueFlags = map[string]bool{
	"-r": true, "--require": true, "--import": true, "--loader": true,
	"--experimental-loader": true, "-C": true, "--conditions": true,
	"--title": true, "--inspect-port": true, "--env-file": true,
	"--input-type": true, "--stack-size": true, "--max-old-space-size": true,
	"--watch-path": true, "--run": true, "--disable-warning": true,
	"--experimental-config-file": true, "--localstorage-file": true,
	"--diagnostic-dir": true, "--report-dir": true, "--secure-heap": true,
	"--openssl-config": true, "--icu-data-dir": true, "--redirect-warnings": true,
	"--dns-result-order": true, "--unhandled-rejections": true, "--trace-event-categories": true,
}

// noScriptFlags make node run something other than a script file.
var noScriptFlags = map[string]string{
	"-e": "evaluates inline code", "--eval": "evaluates inline code",
	"-p": "prints inline code", "--print": "prints inline code",
	"-i": "starts the REPL", "--interactive": "starts the REPL",
	"--test": "runs the test runner", "-c": "only checks syntax", "--check": "only checks syntax",
	"-v": "prints its version", "--version": "prints its version",
	"-h": "prints its help", "--help": "prints its help",
	"--v8-options": "prints V8's options",
}

// IsNodeBinary reports whether word names the node binary.
func IsNodeBinary(word string) bool {
	b := path.Base(word)
	return b == "node" || b == "nodejs"
}

// parseNode reads `node [flags] script [args]` from rest, which starts
// after the binary. A `node --run <name>` is returned as a package script.
func parseNode(binary string, rest []string) (*Invocation, *PackageScript, error) {
	inv := &Invocation{Binary: binary}
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		name, value, hasValue := strings.Cut(a, "=")
		switch {
		case a == "--":
			if i+1 >= len(rest) {
				return nil, nil, unsupported("node runs no script file (it starts the REPL)")
			}
			inv.Script, inv.Args = rest[i+1], rest[i+2:]
			return inv, nil, nil
		case a == "-":
			return nil, nil, unsupported("node reads the script from standard input")
		case !strings.HasPrefix(a, "-"):
			inv.Script, inv.Args = a, rest[i+1:]
			return inv, nil, nil
		case noScriptFlags[name] != "":
			return nil, nil, unsupported("node %s %s, it runs no script file", name, noScriptFlags[name])
		case name == "--run":
			if !hasValue {
				if i+1 >= len(rest) {
					return nil, nil, unsupported("node --run names no script")
				}
				i++
				value = rest[i]
			}
			args := rest[i+1:]
			if len(args) > 0 && args[0] == "--" {
				args = args[1:]
			}
			return nil, &PackageScript{Manager: "node", Name: value, Args: args}, nil
		case name == "--watch" || name == "--watch-path" || name == "--watch-preserve-output":
			// The rewrite sets --watch once; --watch-path would make node
			// watch only that path and never see boot.cjs touched.
			if name == "--watch-path" && !hasValue {
				i++
			}
		case valueFlags[name] && !hasValue:
			inv.Flags = append(inv.Flags, a)
			if i+1 < len(rest) {
				inv.Flags = append(inv.Flags, rest[i+1])
				i++
			}
		default:
			inv.Flags = append(inv.Flags, a)
		}
	}
	return nil, nil, unsupported("node runs no script file (it starts the REPL)")
}

// watchFlag reports whether a is a flag that the rewrite drops.
func watchFlag(a string) (drop, takesNext bool) {
	name, _, hasValue := strings.Cut(a, "=")
	switch name {
	case "--watch", "--watch-preserve-output":
		return true, false
	case "--watch-path":
		return true, !hasValue
	}
	return false, false
}

// isScriptFile reports whether docker-entrypoint.sh would hand word to
// node: it prepends node when the first word is a flag or is not a command.
// A word with a JavaScript extension is a file, not a command.
func isScriptFile(word string) bool {
	if strings.HasPrefix(word, "-") {
		return true
	}
	switch path.Ext(word) {
	case ".js", ".mjs", ".cjs":
		return true
	}
	return false
}
