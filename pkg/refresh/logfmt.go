package refresh

import (
	"errors"
	"strconv"
	"strings"
)

// errQuote reports a quoted value that is unterminated or has a bad escape,
// as in a truncated line.
var errQuote = errors.New("malformed quoted value")

// pairs scans the key=value pairs of a logfmt tail as the fetcher writes it
// (Record.String): values are bare, or Go-quoted by
// strconv.Quote. A bare key without "=" has the value "".
type pairs struct {
	rest       string
	key, value string
	// err is errQuote once a quoted value is broken; scanning stops there
	// and key names the field it broke in.
	err error
}

// next advances to the next pair; false at the end or on an error.
func (p *pairs) next() bool {
	if p.err != nil {
		return false
	}
	p.rest = strings.TrimLeft(p.rest, " \t")
	if p.rest == "" {
		return false
	}
	end := strings.IndexAny(p.rest, "= \t")
	if end < 0 || p.rest[end] != '=' {
		// A bare word: a key without a value.
		if end < 0 {
			end = len(p.rest)
		}
		p.key, p.value, p.rest = p.rest[:end], "", p.rest[end:]
		return true
	}
	p.key, p.rest = p.rest[:end], p.rest[end+1:]
	if strings.HasPrefix(p.rest, `"`) {
		v, rest, err := unquote(p.rest)
		if err != nil {
			p.value, p.rest, p.err = "", "", err
			return false
		}
		p.value, p.rest = v, rest
		return true
	}
	end = strings.IndexAny(p.rest, " \t")
	if end < 0 {
		end = len(p.rest)
	}
	p.value, p.rest = p.rest[:end], p.rest[end:]
	return true
}

// unquote returns the Go-quoted value at the start of s and the rest after
// its closing quote.
func unquote(s string) (string, string, error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", "", errQuote
			}
			return v, s[i+1:], nil
		}
	}
	return "", "", errQuote
}
