package pack

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
)

// Release is a tree as a delta release (docs/delta.md): its root, whose
// sha256 is the digest, its parts, and where each file's content is.
type Release struct {
	// Root is the root's bytes; Digest is "sha256:<hex>" of them.
	Root   []byte
	Digest string
	// Parts are the root's parts, in order.
	Parts []manifest.Part
	// Files are the tree's files by the sha256 of their content, one path
	// for each content.
	Files map[string]TreeFile
	// Count and Bytes are the tree's files and their total size.
	Count int
	Bytes int64
	// Left is what the ignore rules left out, as Artifact.Left.
	Left []Left
}

// Hex returns the digest without its "sha256:" prefix.
func (r *Release) Hex() string { return strings.TrimPrefix(r.Digest, digest.Prefix) }

// Secrets lists the paths left out because they look like secrets.
func (r *Release) Secrets() []string { return secrets(r.Left) }

// Open gives the size of the part or file of the release whose sha256 is
// hex, and what reads it; ok is false when the release has none.
func (r *Release) Open(hex string) (size int64, open func() (io.ReadCloser, error), ok bool) {
	for _, p := range r.Parts {
		if p.Hex == hex {
			return int64(len(p.Data)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(p.Data)), nil }, true
		}
	}
	f, ok := r.Files[hex]
	if !ok {
		return 0, nil, false
	}
	return f.Size, func() (io.ReadCloser, error) { return os.Open(f.Abs) }, true
}

// Hashes remembers the sha256 of the files that Delta hashed, by path,
// size and mtime, so that the next Delta of the tree (a push under
// --watch) hashes only what changed, as git's index does. The zero value
// is ready to use; a Hashes is not safe for concurrent use.
type Hashes struct {
	m map[string]cachedHash
}

type cachedHash struct {
	size    int64
	modTime time.Time
	hex     string
}

// racyWindow: a file modified less than this before it was hashed is
// hashed again next time, because a second write within the file system's
// timestamp granularity could leave its size and mtime as they were.
const racyWindow = 2 * time.Second

// sum returns the sha256 of f's content, from h when f has not changed
// since it was hashed.
func (h *Hashes) sum(f TreeFile, now time.Time) (string, error) {
	if c, ok := h.m[f.Abs]; ok && c.size == f.Size && c.modTime.Equal(f.ModTime) {
		return c.hex, nil
	}
	file, err := os.Open(f.Abs)
	if err != nil {
		return "", err
	}
	defer file.Close()
	s := sha256.New()
	n, err := io.Copy(s, file)
	if err != nil {
		return "", err
	}
	if n != f.Size {
		return "", fmt.Errorf("%s changed while it was read (%d bytes, then %d): push again", f.Path, f.Size, n)
	}
	sum := hex.EncodeToString(s.Sum(nil))
	if now.Sub(f.ModTime) > racyWindow {
		if h.m == nil {
			h.m = map[string]cachedHash{}
		}
		h.m[f.Abs] = cachedHash{size: f.Size, modTime: f.ModTime, hex: sum}
	}
	return sum, nil
}

// Delta makes the tree in dir a delta release: the files that Dir would
// pack (Walk), each hashed, in a manifest (package manifest). hashes may
// be nil.
func Delta(dir string, o Options, hashes *Hashes) (*Release, error) {
	t, err := Walk(dir, o)
	if err != nil {
		return nil, err
	}
	if hashes == nil {
		hashes = &Hashes{}
	}
	now := time.Now()
	r := &Release{Files: map[string]TreeFile{}, Left: t.Left}
	entries := make([]manifest.Entry, 0, len(t.Files))
	for _, f := range t.Files {
		sum, err := hashes.sum(f, now)
		if err != nil {
			return nil, fmt.Errorf("pack %s: %w", dir, err)
		}
		mode := manifest.ModeFile
		if f.Exec {
			mode = manifest.ModeExec
		}
		entries = append(entries, manifest.Entry{Path: f.Path, Mode: mode, Size: f.Size, Hex: sum})
		if _, ok := r.Files[sum]; !ok {
			r.Files[sum] = f
		}
		r.Bytes += f.Size
	}
	r.Count = len(entries)
	if r.Root, r.Parts, err = manifest.Build(entries); err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	r.Digest = digest.Of(r.Root)
	return r, nil
}
