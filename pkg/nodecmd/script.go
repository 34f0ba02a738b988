package nodecmd

import (
	"fmt"
	"strings"
)

// defaultStart is what `npm start` and `pnpm start` run when package.json
// has no start script (their documented default).
const defaultStart = "node server.js"

// ResolveScript turns a package-manager script run into the node
// invocation that its package.json script runs. The script must be a plain
// `[NAME=value ...] [exec] node [flags] file [args]`, or run another script
// of the same package.json that is; anything else is an
// *UnsupportedError that quotes the script. scripts is package.json's
// "scripts", nil when the image has no package.json.
func ResolveScript(ps *PackageScript, scripts map[string]string) (*Invocation, error) {
	return resolveScript(ps, scripts, 0)
}

func resolveScript(ps *PackageScript, scripts map[string]string, depth int) (*Invocation, error) {
	if depth > maxNesting {
		return nil, unsupported("package scripts run each other more than %d deep", maxNesting)
	}
	body, ok := scripts[ps.Name]
	if !ok {
		if ps.Name == "start" && (ps.Manager == "npm" || ps.Manager == "pnpm") {
			body = defaultStart
		} else {
			return nil, unsupported("package.json has no %q script", ps.Name)
		}
	}
	script := body
	refuse := func(why string) error {
		return unsupported("the %q script %q %s; aether-devhot needs `node [flags] <file> [args]` there", ps.Name, script, why)
	}
	words, err := shellWords(body)
	if err != nil {
		return nil, refuse("cannot be read: " + err.Error())
	}
	for _, w := range words {
		if w.op != "" {
			return nil, refuse(fmt.Sprintf("is more than one command (it uses %q)", strings.TrimSpace(w.op)))
		}
	}
	if len(words) == 0 {
		return nil, refuse("is empty")
	}
	k := 0
	shell := false
	for k < len(words) && isAssignment(words[k]) {
		k++
		shell = true
	}
	exec := false
	if k < len(words) && words[k].value == "exec" {
		exec = true
		k++
	}
	if k < len(words) && (words[k].value == "cross-env" || words[k].value == "env") && !exec {
		// cross-env and env only set variables here, which the shell does
		// itself; without the manager, cross-env is not on the PATH.
		body = body[:words[k].start] + body[words[k+min(1, len(words)-k-1)].start:]
		if words, err = shellWords(body); err != nil {
			return nil, refuse("cannot be read: " + err.Error())
		}
		for ; k < len(words) && isAssignment(words[k]); k++ {
			shell = true
		}
	}
	vals := make([]string, 0, len(words)-k)
	for i, w := range words[k:] {
		if w.dynamic {
			if i == 0 {
				return nil, refuse("runs a program that only the shell can name")
			}
			shell = true
		}
		vals = append(vals, w.value)
	}
	inner, err := parseArgv(vals, depth+1)
	switch {
	case err != nil:
		return nil, refuse(strings.TrimPrefix(err.Error(), "it "))
	case inner.Shell != nil || len(inner.Wrappers) > 0:
		return nil, refuse("runs node through another program")
	case inner.Script != nil:
		if shell || exec {
			return nil, refuse("sets variables for another script")
		}
		next, err := resolveScript(inner.Script, scripts, depth+1)
		if err != nil {
			return nil, err
		}
		next.Args = append(next.Args, inner.Script.Args...)
		return next, nil
	}
	inv := inner.Node
	if w := words[len(words)-len(inv.Args)-1]; w.dynamic {
		return nil, refuse("names its file through an expansion")
	}
	if shell {
		// Run the line as the manager did, so its assignments and
		// expansions still apply.
		inv.Line, inv.words, inv.prog, inv.exec = body, words, k, exec
	}
	return inv, nil
}
