package mutate

import (
	"path"
	"strings"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// nodeCommand is an app container's `node [flags] script [args]` command
// line, split so that --watch and boot.cjs can go between flags and script.
type nodeCommand struct {
	Node   string   // the node binary as written
	Flags  []string // node's own flags, without --watch and --watch-path
	Script string   // "" when the command is not `node script`
	Args   []string // the script's arguments
}

// nodeValueFlags take their value as the next argument when written
// without "=".
var nodeValueFlags = map[string]bool{
	"-r": true, "--require": true, "--import": true, "--loader": true,
	"--experimental-loader": true, "-C": true, "--conditions": true,
	"--title": true, "--inspect-port": true, "--env-file": true,
	"--input-type": true, "--stack-size": true, "--max-old-space-size": true,
	"--watch-path": true,
}

// nodeNoScriptFlags make node run something other than a script file.
var nodeNoScriptFlags = map[string]bool{
	"-e": true, "--eval": true, "-p": true, "--print": true,
	"-i": true, "--interactive": true, "--test": true, "-c": true, "--check": true,
	"-v": true, "--version": true, "-h": true, "--help": true,
}

// parseNode splits argv (command followed by args). It reports false when
// argv does not run the node binary at all.
func parseNode(argv []string) (nodeCommand, bool) {
	if len(argv) == 0 {
		return nodeCommand{}, false
	}
	if b := path.Base(argv[0]); b != "node" && b != "nodejs" {
		return nodeCommand{}, false
	}
	nc := nodeCommand{Node: argv[0]}
	rest := argv[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		name, _, hasValue := strings.Cut(a, "=")
		switch {
		case a == "--":
			if i+1 < len(rest) {
				nc.Script, nc.Args = rest[i+1], rest[i+2:]
			}
			return nc, true
		case !strings.HasPrefix(a, "-") || a == "-":
			if a == "-" { // script from stdin
				return nc, true
			}
			nc.Script, nc.Args = a, rest[i+1:]
			return nc, true
		case nodeNoScriptFlags[name]:
			return nc, true
		case name == "--watch" || name == "--watch-path":
			// Our --watch goes in once; a --watch-path would make node watch
			// only that path and never see boot.cjs touched.
			if name == "--watch-path" && !hasValue {
				i++
			}
		case nodeValueFlags[name] && !hasValue:
			if i+1 < len(rest) {
				nc.Flags = append(nc.Flags, a, rest[i+1])
				i++
			} else {
				nc.Flags = append(nc.Flags, a)
			}
		default:
			nc.Flags = append(nc.Flags, a)
		}
	}
	return nc, true
}

// bootPath is boot.cjs as the app container sees it.
func bootPath(workspace string) string {
	return path.Join(workspace, sidecar.BootFile)
}

// rewrite is the app's new command: node [flags] --watch boot.cjs [args].
func (nc nodeCommand) rewrite(workspace string) []string {
	node := nc.Node
	if node == "" {
		node = "node"
	}
	out := make([]string, 0, len(nc.Flags)+len(nc.Args)+3)
	out = append(out, node)
	out = append(out, nc.Flags...)
	out = append(out, "--watch", bootPath(workspace))
	return append(out, nc.Args...)
}

// isRewritten reports whether command is one that rewrite produced for this
// workspace, as opposed to one the user set since.
func isRewritten(command []string, workspace string) bool {
	boot := bootPath(workspace)
	for i := 1; i < len(command); i++ {
		if command[i] == boot && command[i-1] == "--watch" {
			return true
		}
	}
	return false
}

// entryFromScript maps the script path of the original command to a path
// relative to the artifact root. The app saw the artifact at workspace, and
// ran relative scripts from workingDir ("" if the image decides).
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
