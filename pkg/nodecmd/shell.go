package nodecmd

import (
	"errors"
	"fmt"
	"strings"
)

// word is one shell word of a command string: its exact text, where it is,
// and its value once quotes and escapes are removed.
type word struct {
	raw        string
	start, end int
	value      string
	// dynamic is set when the word holds an expansion ($VAR, $(...),
	// `...`) outside single quotes: its value is only known at run time.
	dynamic bool
	// op is set instead of value for an operator: && || ; & | ( ) < > and
	// the like, and "\n" for a newline.
	op string
}

// shellWords splits s as a POSIX shell would into words and operators. It
// understands quotes, escapes, comments and nested $(...), ${...} and
// backquotes well enough to find where one command ends; it does not expand
// anything.
func shellWords(s string) ([]word, error) {
	var out []word
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '\\' && i+1 < len(s) && s[i+1] == '\n':
			i += 2 // line continuation
		case c == '\n':
			out = append(out, word{raw: "\n", start: i, end: i + 1, op: "\n"})
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.IndexByte("&|;()<>", c) >= 0:
			n := 1
			if i+1 < len(s) {
				switch two := s[i : i+2]; two {
				case "&&", "||", ";;", ">>", "<<", ">&", "<&", ">|", "<>":
					n = 2
				}
			}
			out = append(out, word{raw: s[i : i+n], start: i, end: i + n, op: s[i : i+n]})
			i += n
		default:
			w, err := scanWord(s, i)
			if err != nil {
				return nil, err
			}
			out = append(out, w)
			i = w.end
		}
	}
	return out, nil
}

// scanWord reads one word starting at i.
func scanWord(s string, i int) (word, error) {
	w := word{start: i}
	var v strings.Builder
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || strings.IndexByte("&|;()<>", c) >= 0:
			w.end, w.raw, w.value = i, s[w.start:i], v.String()
			return w, nil
		case c == '\\':
			if i+1 >= len(s) {
				return w, errors.New("a backslash ends the command")
			}
			if s[i+1] != '\n' {
				v.WriteByte(s[i+1])
			}
			i += 2
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return w, errors.New("a single quote is not closed")
			}
			v.WriteString(s[i+1 : i+1+j])
			i += j + 2
		case c == '"':
			i++
			for {
				if i >= len(s) {
					return w, errors.New("a double quote is not closed")
				}
				if s[i] == '"' {
					i++
					break
				}
				switch s[i] {
				case '\\':
					if i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
						if s[i+1] != '\n' {
							v.WriteByte(s[i+1])
						}
						i += 2
						continue
					}
				case '$', '`':
					w.dynamic = true
					end, err := skipExpansion(s, i)
					if err != nil {
						return w, err
					}
					v.WriteString(s[i:end])
					i = end
					continue
				}
				v.WriteByte(s[i])
				i++
			}
		case c == '$' || c == '`':
			w.dynamic = true
			end, err := skipExpansion(s, i)
			if err != nil {
				return w, err
			}
			v.WriteString(s[i:end])
			i = end
		default:
			v.WriteByte(c)
			i++
		}
	}
	w.end, w.raw, w.value = i, s[w.start:i], v.String()
	return w, nil
}

// skipExpansion returns the end of the $..., ${...}, $(...) or `...` that
// starts at i.
func skipExpansion(s string, i int) (int, error) {
	if s[i] == '`' {
		for j := i + 1; j < len(s); j++ {
			switch s[j] {
			case '\\':
				j++
			case '`':
				return j + 1, nil
			}
		}
		return 0, errors.New("a backquote is not closed")
	}
	if i+1 >= len(s) {
		return i + 1, nil
	}
	var open, close byte
	switch s[i+1] {
	case '(':
		open, close = '(', ')'
	case '{':
		open, close = '{', '}'
	default:
		j := i + 1
		if strings.IndexByte("@*#?$!-0123456789", s[j]) >= 0 {
			return j + 1, nil // a special or positional parameter
		}
		for j < len(s) && isNameByte(s[j]) {
			j++
		}
		return j, nil
	}
	depth := 0
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '\'':
			k := strings.IndexByte(s[j+1:], '\'')
			if k < 0 {
				return 0, errors.New("a single quote is not closed")
			}
			j += k + 1
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("%q is not closed", s[i:i+2])
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// lastCommand returns the words of the last simple command of s, the one
// the shell runs last when every step before it succeeds (after the last
// top-level ;, &, &&, || or newline). It fails, saying why, when that command
// is not a plain list of words: a pipe, a redirection, a subshell, a
// background job or a compound command (if, for, while, { }).
func lastCommand(s string) ([]word, error) {
	ws, err := shellWords(s)
	if err != nil {
		return nil, err
	}
	for len(ws) > 0 && (ws[len(ws)-1].op == "\n" || ws[len(ws)-1].op == ";") {
		ws = ws[:len(ws)-1]
	}
	start := 0
	for i, w := range ws {
		switch w.op {
		case "&&", "||", ";", "&", "\n":
			start = i + 1
		}
	}
	last := ws[start:]
	if len(last) == 0 {
		return nil, errors.New("it runs no command")
	}
	for _, w := range last {
		if w.op != "" {
			return nil, fmt.Errorf("its last command uses %q", strings.TrimSpace(w.op))
		}
	}
	switch last[0].value {
	case "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "{", "}", "!":
		return nil, fmt.Errorf("its last command is a compound command (%s)", last[0].value)
	}
	return last, nil
}

// isAssignment reports whether w is NAME=value, as at the start of a
// command.
func isAssignment(w word) bool {
	name, _, ok := strings.Cut(w.raw, "=")
	if !ok || name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return false
		}
	}
	return true
}

// quote returns s as one shell word.
func quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '_' || r == '-' || r == '.' || r == '/' || r == '=' || r == ':' || r == ',' || r == '+' || r == '@' || r == '%' ||
			r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
