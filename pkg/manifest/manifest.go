// Package manifest is the one form of a delta release (docs/delta.md): a
// root that names parts, and parts that list every file of the release by
// path, mode, size and the sha256 of its content. The release's digest,
// aether.dev/digest, is the sha256 of the root's bytes; the root names each
// part by its sha256 and each part names each file by its own, so that one
// digest still fixes every byte of the release, and a file or part already
// on hand never moves again.
//
// Files are cut into parts at paths chosen by the paths themselves (Build),
// so that a change to one file changes one part and the root, whatever the
// size of the tree: a save moves the file, one part of about 64 entries and
// a root of one line per part.
//
// The encoding is canonical: Build gives the same bytes for the same files,
// and Parse accepts only what Build writes, so that one release has exactly
// one digest. Everything here parses untrusted bytes (the store parses what
// a pusher uploads, the fetcher what it downloads) and checks them against
// Limits before it keeps anything.
package manifest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aether-dev/aether-devhot/pkg/digest"
)

// Magic lines start a root and a part; a blob whose bytes start with
// RootMagic is a delta release's root (IsRoot).
const (
	RootMagic = "aether-devhot manifest v1\n"
	PartMagic = "aether-devhot part v1\n"
)

// Modes a file may have: the executable bit is the only one kept, as in
// an archive that pack writes.
const (
	ModeFile = 0o644
	ModeExec = 0o755
)

// Entry is one file of a release.
type Entry struct {
	// Path is slash-separated and relative to the release's root; see
	// ValidPath.
	Path string
	// Mode is ModeFile or ModeExec.
	Mode int
	// Size is the file's length in bytes.
	Size int64
	// Hex is the sha256 of the file's content, in 64 lowercase hex digits;
	// it also names the file's blob in the store.
	Hex string
}

// PartRef is a root's line for one part.
type PartRef struct {
	// Hex is the sha256 of the part's bytes.
	Hex string
	// Files is how many entries the part lists.
	Files int
}

// Root is a parsed root.
type Root struct {
	// Files and Bytes are the release's file count and size, the sums of
	// its parts', so that the limits are checked before a part is fetched.
	Files int
	Bytes int64
	// Parts are in path order: the first entry of each part sorts after
	// the last of the one before.
	Parts []PartRef
}

// Part is a part of a release that Build made: its bytes, their sha256 and
// what they list.
type Part struct {
	Hex     string
	Data    []byte
	Entries []Entry
}

// Limits bound what Parse accepts. Zero fields take DefaultLimits'.
type Limits struct {
	// MaxFiles caps the release's files.
	MaxFiles int
	// MaxBytes caps the release's total size.
	MaxBytes int64
	// MaxPathLen caps the length of a path, in bytes.
	MaxPathLen int
	// MaxDepth caps the directories of a path.
	MaxDepth int
}

// DefaultLimits are the fetcher's defaults for an archive.
var DefaultLimits = Limits{MaxFiles: 100_000, MaxBytes: 2 << 30, MaxPathLen: 1024, MaxDepth: 64}

func (l Limits) withDefaults() Limits {
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultLimits.MaxFiles
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxPathLen <= 0 {
		l.MaxPathLen = DefaultLimits.MaxPathLen
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	return l
}

// Errors that Parse wraps, so that the fetcher can tell which REFRESH_FAIL
// reason a hostile manifest gets.
var (
	// ErrMalformed: the bytes are not a root or a part as Build writes them.
	ErrMalformed = errors.New("malformed manifest")
	// ErrUnsafePath: a path that could leave the release's root.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrTooLarge: over a limit.
	ErrTooLarge = errors.New("over the limits")
)

// Boundaries of parts: a part ends after an entry whose path's sha256
// starts with a byte below cutBelow, 1 in 64 paths, or at maxPartFiles.
const (
	cutBelow     = 256 / 64
	maxPartFiles = 1024
	// MaxPartBytes caps one part's encoding: maxPartFiles entries of the
	// longest paths.
	MaxPartBytes = len(PartMagic) + maxPartFiles*(64+1+20+1+3+1+1024+1)
	// maxRootLine is the longest line of a part in a root.
	maxRootLine = len("part ") + 64 + 1 + 20 + 1
)

// IsRoot reports whether b starts like a root.
func IsRoot(b []byte) bool { return bytes.HasPrefix(b, []byte(RootMagic)) }

// MaxRootBytes is the longest root that ParseRoot accepts under lim: one
// part per file.
func MaxRootBytes(lim Limits) int {
	lim = lim.withDefaults()
	return len(RootMagic) + len("files  bytes \n") + 40 + lim.MaxFiles*maxRootLine
}

// Build encodes entries, which must be sorted by path, unique and valid
// (Check), as a root and its parts. The root's sha256 is the release's
// digest.
func Build(entries []Entry) (root []byte, parts []Part, err error) {
	if err := Check(entries, Limits{MaxFiles: len(entries) + 1, MaxBytes: 1 << 62}); err != nil {
		return nil, nil, err
	}
	var total int64
	for start := 0; start < len(entries); {
		end := start
		for end < len(entries) {
			end++
			if end-start == maxPartFiles || cut(entries[end-1].Path) {
				break
			}
		}
		p := Part{Entries: entries[start:end:end], Data: encodePart(entries[start:end])}
		p.Hex = digest.HexOf(p.Data)
		parts = append(parts, p)
		start = end
	}
	for _, e := range entries {
		total += e.Size
	}
	var b strings.Builder
	b.WriteString(RootMagic)
	fmt.Fprintf(&b, "files %d bytes %d\n", len(entries), total)
	for _, p := range parts {
		fmt.Fprintf(&b, "part %s %d\n", p.Hex, len(p.Entries))
	}
	return []byte(b.String()), parts, nil
}

// cut reports whether a part ends after path.
func cut(path string) bool {
	sum := sha256.Sum256([]byte(path))
	return sum[0] < cutBelow
}

func encodePart(entries []Entry) []byte {
	var b bytes.Buffer
	b.WriteString(PartMagic)
	for _, e := range entries {
		fmt.Fprintf(&b, "%s %d %o %s\n", e.Hex, e.Size, e.Mode, e.Path)
	}
	return b.Bytes()
}

// ParseRoot parses a root and checks its totals against lim.
func ParseRoot(b []byte, lim Limits) (*Root, error) {
	lim = lim.withDefaults()
	if len(b) > MaxRootBytes(lim) {
		return nil, fmt.Errorf("%w: the root is %d bytes, more than %d files need", ErrTooLarge, len(b), lim.MaxFiles)
	}
	lines, err := splitLines(b, RootMagic)
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: the root has no totals line", ErrMalformed)
	}
	r := &Root{}
	f := strings.Split(lines[0], " ")
	if len(f) != 4 || f[0] != "files" || f[2] != "bytes" {
		return nil, fmt.Errorf("%w: line 2 is %q, want \"files <n> bytes <n>\"", ErrMalformed, clip(lines[0]))
	}
	files, err := parseSize(f[1])
	if err != nil {
		return nil, fmt.Errorf("%w: line 2: files: %v", ErrMalformed, err)
	}
	if r.Bytes, err = parseSize(f[3]); err != nil {
		return nil, fmt.Errorf("%w: line 2: bytes: %v", ErrMalformed, err)
	}
	if files > int64(lim.MaxFiles) {
		return nil, fmt.Errorf("%w: %d files, the limit is %d", ErrTooLarge, files, lim.MaxFiles)
	}
	r.Files = int(files)
	if r.Bytes > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, r.Bytes, lim.MaxBytes)
	}
	sum := 0
	for i, l := range lines[1:] {
		f := strings.Split(l, " ")
		if len(f) != 3 || f[0] != "part" || !digest.IsHex(f[1]) {
			return nil, fmt.Errorf("%w: line %d is %q, want \"part <64 hex> <n>\"", ErrMalformed, i+3, clip(l))
		}
		n, err := parseSize(f[2])
		if err != nil || n == 0 || n > maxPartFiles {
			return nil, fmt.Errorf("%w: line %d: a part lists 1 to %d files, not %q", ErrMalformed, i+3, maxPartFiles, clip(f[2]))
		}
		if sum += int(n); sum > r.Files {
			return nil, fmt.Errorf("%w: the parts list more files than the root's %d", ErrMalformed, r.Files)
		}
		r.Parts = append(r.Parts, PartRef{Hex: f[1], Files: int(n)})
	}
	if sum != r.Files {
		return nil, fmt.Errorf("%w: the parts list %d files, the root says %d", ErrMalformed, sum, r.Files)
	}
	return r, nil
}

// ParsePart parses the part that ref names. It checks each path and that
// the paths are sorted and unique; Join checks the rest.
func ParsePart(b []byte, ref PartRef, lim Limits) ([]Entry, error) {
	lim = lim.withDefaults()
	if len(b) > MaxPartBytes {
		return nil, fmt.Errorf("%w: part %s is %d bytes, more than %d files need", ErrTooLarge, ref.Hex, len(b), maxPartFiles)
	}
	lines, err := splitLines(b, PartMagic)
	if err != nil {
		return nil, fmt.Errorf("part %s: %w", ref.Hex, err)
	}
	if len(lines) != ref.Files {
		return nil, fmt.Errorf("%w: part %s lists %d files, the root says %d", ErrMalformed, ref.Hex, len(lines), ref.Files)
	}
	entries := make([]Entry, 0, len(lines))
	for i, l := range lines {
		e, err := parseEntry(l)
		if err != nil {
			return nil, fmt.Errorf("part %s line %d: %w", ref.Hex, i+2, err)
		}
		if err := ValidPath(e.Path, lim); err != nil {
			return nil, fmt.Errorf("part %s line %d: %w", ref.Hex, i+2, err)
		}
		if i > 0 && e.Path <= entries[i-1].Path {
			return nil, fmt.Errorf("%w: part %s line %d: %q does not sort after %q", ErrMalformed, ref.Hex, i+2, clip(e.Path), clip(entries[i-1].Path))
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// Join checks that parts, parsed from r's parts in order, make one
// release: paths sorted and unique across parts, cut where Build cuts
// them, no file where another has a directory, and the root's totals.
func Join(r *Root, parts [][]Entry, lim Limits) ([]Entry, error) {
	if len(parts) != len(r.Parts) {
		return nil, fmt.Errorf("%w: %d parts for a root of %d", ErrMalformed, len(parts), len(r.Parts))
	}
	all := make([]Entry, 0, r.Files)
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all) != r.Files {
		return nil, fmt.Errorf("%w: the parts list %d files, the root says %d", ErrMalformed, len(all), r.Files)
	}
	for i, p := range parts {
		for _, e := range p[:len(p)-1] {
			if cut(e.Path) {
				return nil, fmt.Errorf("%w: part %s goes on after %q, where Build cuts", ErrMalformed, r.Parts[i].Hex, clip(e.Path))
			}
		}
		if last := p[len(p)-1].Path; i+1 < len(parts) && len(p) < maxPartFiles && !cut(last) {
			return nil, fmt.Errorf("%w: part %s ends at %q, where Build does not cut", ErrMalformed, r.Parts[i].Hex, clip(last))
		}
	}
	if err := Check(all, lim); err != nil {
		return nil, err
	}
	var total int64
	for _, e := range all {
		total += e.Size
	}
	if total != r.Bytes {
		return nil, fmt.Errorf("%w: the files add up to %d bytes, the root says %d", ErrMalformed, total, r.Bytes)
	}
	return all, nil
}

// Check says why entries cannot be one release: a path that is not valid,
// paths out of order or repeated, a path below another file's, a mode
// other than ModeFile or ModeExec, a hash that is not 64 lowercase hex, or
// more than lim allows.
func Check(entries []Entry, lim Limits) error {
	lim = lim.withDefaults()
	if len(entries) > lim.MaxFiles {
		return fmt.Errorf("%w: %d files, the limit is %d", ErrTooLarge, len(entries), lim.MaxFiles)
	}
	files := make(map[string]struct{}, len(entries))
	var total int64
	for i, e := range entries {
		if err := ValidPath(e.Path, lim); err != nil {
			return err
		}
		if i > 0 && e.Path <= entries[i-1].Path {
			return fmt.Errorf("%w: %q does not sort after %q", ErrMalformed, clip(e.Path), clip(entries[i-1].Path))
		}
		if e.Mode != ModeFile && e.Mode != ModeExec {
			return fmt.Errorf("%w: %s: mode %o, want 644 or 755", ErrMalformed, clip(e.Path), e.Mode)
		}
		if !digest.IsHex(e.Hex) {
			return fmt.Errorf("%w: %s: sha256 %q, want 64 lowercase hex digits", ErrMalformed, clip(e.Path), clip(e.Hex))
		}
		if e.Size < 0 || e.Size > lim.MaxBytes-total {
			return fmt.Errorf("%w: the files are more than %d bytes", ErrTooLarge, lim.MaxBytes)
		}
		total += e.Size
		files[e.Path] = struct{}{}
	}
	for _, e := range entries {
		for dir := e.Path; ; {
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			dir = dir[:i]
			if _, ok := files[dir]; ok {
				return fmt.Errorf("%w: %s is a file and the directory of %s", ErrMalformed, clip(dir), clip(e.Path))
			}
		}
	}
	return nil
}

// ValidPath says why p cannot name a file of a release: empty, absolute,
// with an empty, "." or ".." element, with a byte below 0x20, DEL or a
// backslash, not UTF-8, or longer or deeper than lim allows.
func ValidPath(p string, lim Limits) error {
	lim = lim.withDefaults()
	switch {
	case p == "":
		return fmt.Errorf("%w: an empty path", ErrMalformed)
	case len(p) > lim.MaxPathLen:
		return fmt.Errorf("%w: a path of %d bytes, the limit is %d", ErrTooLarge, len(p), lim.MaxPathLen)
	case !utf8.ValidString(p):
		return fmt.Errorf("%w: %q is not UTF-8", ErrMalformed, clip(p))
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }):
		return fmt.Errorf("%w: %q has a control character or a backslash", ErrUnsafePath, clip(p))
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%w: %q is absolute", ErrUnsafePath, clip(p))
	}
	elems := strings.Split(p, "/")
	if len(elems)-1 > lim.MaxDepth {
		return fmt.Errorf("%w: %q is %d directories deep, the limit is %d", ErrTooLarge, clip(p), len(elems)-1, lim.MaxDepth)
	}
	for _, el := range elems {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("%w: %q has an element %q", ErrUnsafePath, clip(p), el)
		}
	}
	return nil
}

// splitLines checks the magic line and the final newline and returns the
// lines between them.
func splitLines(b []byte, magic string) ([]string, error) {
	rest, ok := bytes.CutPrefix(b, []byte(magic))
	if !ok {
		return nil, fmt.Errorf("%w: it does not start with %q", ErrMalformed, strings.TrimSpace(magic))
	}
	if len(rest) == 0 {
		return nil, nil
	}
	if rest[len(rest)-1] != '\n' {
		return nil, fmt.Errorf("%w: the last line has no newline", ErrMalformed)
	}
	return strings.Split(string(rest[:len(rest)-1]), "\n"), nil
}

// parseEntry parses "<hex> <size> <mode> <path>".
func parseEntry(l string) (Entry, error) {
	f := strings.SplitN(l, " ", 4)
	if len(f) != 4 || !digest.IsHex(f[0]) {
		return Entry{}, fmt.Errorf("%w: %q, want \"<64 hex> <size> <644|755> <path>\"", ErrMalformed, clip(l))
	}
	size, err := parseSize(f[1])
	if err != nil {
		return Entry{}, fmt.Errorf("%w: size: %v", ErrMalformed, err)
	}
	mode := ModeFile
	switch f[2] {
	case "644":
	case "755":
		mode = ModeExec
	default:
		return Entry{}, fmt.Errorf("%w: mode %q, want 644 or 755", ErrMalformed, clip(f[2]))
	}
	return Entry{Hex: f[0], Size: size, Mode: mode, Path: f[3]}, nil
}

// parseSize accepts only canonical decimals, no sign and no leading zero,
// so that one manifest has one encoding.
func parseSize(s string) (int64, error) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a canonical decimal", clip(s))
	}
	return strconv.ParseInt(s, 10, 64)
}

// clip shortens what a hostile manifest says, for an error message.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	s = s[:80]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
