package nodecmd

import (
	"slices"
	"strings"
)

// Shell is the shell a package script's line runs in, as npm, yarn and
// pnpm run it (their default script-shell).
const Shell = "/bin/sh"

// Rewrite returns the command line that runs boot under `node --watch` in
// place of the entry script, keeping everything else as written. inv is
// what runs the script: s.Node, or for a package script what ResolveScript
// made of it.
func (s Start) Rewrite(boot string, inv *Invocation) []string {
	var run []string // what replaces the program and its arguments
	if s.Script != nil {
		run = scriptRun(inv, boot, s.Script.Args)
	} else {
		run = nodeRun(inv, boot)
	}
	if s.Shell == nil {
		return slices.Concat(s.Wrappers, run)
	}
	sl := s.Shell
	var line string
	if s.Script != nil {
		// The manager and its arguments give way to the script's own line;
		// the arguments, as written, follow it as positional parameters.
		from := sl.words[sl.prog].start
		end := sl.words[len(sl.words)-1].end
		var b strings.Builder
		b.WriteString(sl.Line[:from])
		b.WriteString(joinQuoted(scriptRun(inv, boot, nil)))
		for _, w := range s.Script.argWords {
			b.WriteString(" ")
			b.WriteString(w.raw)
		}
		b.WriteString(sl.Line[end:])
		line = b.String()
	} else {
		line = spliceNode(sl.Line, sl.words[sl.prog:], inv.Binary != "", boot)
	}
	out := slices.Clone(s.argv)
	out[sl.Index] = line
	return out
}

// nodeRun is `[binary] [flags] --watch boot [args]`.
func nodeRun(inv *Invocation, boot string) []string {
	out := make([]string, 0, len(inv.Flags)+len(inv.Args)+3)
	if inv.Binary != "" {
		out = append(out, inv.Binary)
	}
	out = append(out, inv.Flags...)
	out = append(out, "--watch", boot)
	return append(out, inv.Args...)
}

// scriptRun runs a package script's node invocation. A script that is
// just `node [flags] file [args]` becomes that command directly; one with
// environment assignments or expansions runs in Shell as the package
// manager ran it, with exec so that node gets the container's signals, and
// the manager's arguments as "$@".
func scriptRun(inv *Invocation, boot string, args []string) []string {
	if inv.Line == "" {
		return slices.Concat(nodeRun(inv, boot), args)
	}
	line := spliceNode(inv.Line, inv.words[inv.prog:], inv.Binary != "", boot)
	if !inv.exec {
		line = line[:inv.words[inv.prog].start] + "exec " + line[inv.words[inv.prog].start:]
	}
	out := []string{Shell, "-c", line + ` "$@"`, "sh"}
	return append(out, args...)
}

// spliceNode rewrites a shell line whose words from node's binary (when
// hasBinary, else its first flag) to its end are a node invocation: the
// watch flags go, and the script's word becomes `--watch <boot>`. Every
// other character stays as written.
func spliceNode(line string, words []word, hasBinary bool, boot string) string {
	type edit struct {
		from, to int
		with     string
	}
	var edits []edit
	i := 0
	if hasBinary {
		i = 1
	}
	for ; i < len(words); i++ {
		v := words[i].value
		if v == "--" {
			i++
			break
		}
		if !strings.HasPrefix(v, "-") {
			break
		}
		if drop, next := watchFlag(v); drop {
			last := i
			if next && i+1 < len(words) {
				last = i + 1
			}
			end := len(line)
			if last+1 < len(words) {
				end = words[last+1].start
			}
			edits = append(edits, edit{words[i].start, end, ""})
			i = last
			continue
		}
		name, _, hasValue := strings.Cut(v, "=")
		if valueFlags[name] && !hasValue {
			i++
		}
	}
	if i < len(words) {
		edits = append(edits, edit{words[i].start, words[i].end, "--watch " + quote(boot)})
	}
	for j := len(edits) - 1; j >= 0; j-- {
		e := edits[j]
		line = line[:e.from] + e.with + line[e.to:]
	}
	return line
}

func joinQuoted(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = quote(w)
	}
	return strings.Join(q, " ")
}

// Mentions reports whether any word of argv holds boot: the command line
// is one that Rewrite made, as opposed to one the user set since.
func Mentions(argv []string, boot string) bool {
	return slices.ContainsFunc(argv, func(a string) bool { return strings.Contains(a, boot) })
}
