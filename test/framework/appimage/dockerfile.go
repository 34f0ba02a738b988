package appimage

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"unicode"
)

// instruction is one Dockerfile instruction: its keyword (upper case), its
// flags (--name=value, before the arguments) and the rest of its line, with
// continuation lines joined.
type instruction struct {
	file  string
	line  int
	cmd   string
	flags []string
	args  string
	raw   string
}

// errorf is an error that names the Dockerfile, the line and the
// instruction.
func (in instruction) errorf(format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s: %s", in.file, in.line, in.cmd, fmt.Sprintf(format, a...))
}

// parseDockerfile splits file into instructions: comment and blank lines
// are skipped, a line ending in a backslash continues on the next one
// (comment lines inside a continuation are dropped, as Docker does).
func parseDockerfile(file string) ([]instruction, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`))
			cur.WriteString(" ")
			if i < len(lines)-1 {
				continue
			}
		} else {
			cur.WriteString(trimmed)
		}
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			continue
		}
		in := instruction{file: file, line: start, raw: text}
		word, rest, _ := strings.Cut(text, " ")
		in.cmd = strings.ToUpper(word)
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			var flag string
			flag, rest, _ = strings.Cut(rest, " ")
			in.flags = append(in.flags, flag)
			rest = strings.TrimSpace(rest)
		}
		in.args = rest
		out = append(out, in)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no instructions", file)
	}
	return out, nil
}

// flagValues returns the value of each flag of in that allowed names, and
// an error naming any other flag.
func (in instruction) flagValues(allowed ...string) (map[string]string, error) {
	vals := map[string]string{}
	for _, f := range in.flags {
		name, val, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			if len(allowed) == 0 {
				return nil, in.errorf("flag %s is not supported (no flags are)", f)
			}
			return nil, in.errorf("flag %s is not supported (only --%s)", f, strings.Join(allowed, ", --"))
		}
		if !ok || val == "" {
			return nil, in.errorf("flag %s needs a value", f)
		}
		vals[name] = val
	}
	return vals, nil
}

// jsonArgs parses the JSON (exec) form of args, if it is one.
func jsonArgs(args string) ([]string, bool) {
	if !strings.HasPrefix(args, "[") {
		return nil, false
	}
	var list []string
	if err := json.Unmarshal([]byte(args), &list); err != nil {
		return nil, false
	}
	return list, true
}

// command is the argv of a CMD or ENTRYPOINT: the JSON form as it is, the
// shell form under /bin/sh -c, as Docker's default SHELL does.
func command(in instruction) ([]string, error) {
	if list, ok := jsonArgs(in.args); ok {
		return list, nil
	}
	if strings.HasPrefix(in.args, "[") {
		return nil, in.errorf("%s is neither a JSON array of strings nor shell form", in.args)
	}
	if in.args == "" {
		return nil, in.errorf("needs a command")
	}
	return []string{"/bin/sh", "-c", in.args}, nil
}

// words splits s into words at unquoted white space, removing quotes and
// backslash escapes, as Docker does for ENV and COPY arguments.
func words(s string) ([]string, error) {
	var out []string
	var w strings.Builder
	inWord := false
	var quote rune
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote, inWord = r, true
		case r == '\\' && quote != '\'' && i+1 < len(runes):
			i++
			w.WriteRune(runes[i])
			inWord = true
		case quote == 0 && unicode.IsSpace(r):
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		out = append(out, w.String())
	}
	return out, nil
}

// expand replaces $NAME and ${NAME} with their values in env (KEY=VALUE
// entries), as Docker does in WORKDIR, ENV, COPY, USER and EXPOSE; an unset
// variable is empty, \$ is a literal dollar. Other ${...} forms are errors.
func expand(s string, env []string) (string, error) {
	lookup := func(name string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if k, v, _ := strings.Cut(env[i], "="); k == name {
				return v
			}
		}
		return ""
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) && s[i+1] == '$' {
			out.WriteByte('$')
			i++
			continue
		}
		if c != '$' || i+1 == len(s) {
			out.WriteByte(c)
			continue
		}
		if s[i+1] == '{' {
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			name := s[i+2 : i+end]
			if !isName(name) {
				return "", fmt.Errorf("${%s} is not supported (only $NAME and ${NAME})", name)
			}
			out.WriteString(lookup(name))
			i += end
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || unicode.IsLetter(rune(s[j])) || (j > i+1 && unicode.IsDigit(rune(s[j])))) {
			j++
		}
		if j == i+1 {
			out.WriteByte(c)
			continue
		}
		out.WriteString(lookup(s[i+1 : j]))
		i = j - 1
	}
	return out.String(), nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r != '_' && !unicode.IsLetter(r) && (i == 0 || !unicode.IsDigit(r)) {
			return false
		}
	}
	return true
}
