package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
	"github.com/aether-dev/aether-devhot/pkg/pack"
	"github.com/aether-dev/aether-devhot/pkg/store"
)

// deltaRelease is a tree as a delta release (docs/delta.md): its root,
// whose sha256 is the digest, its parts, and where each file's content is.
type deltaRelease struct {
	root   []byte
	digest string
	parts  []manifest.Part
	// files are the tree's files by content hash, one path for each.
	files   map[string]pack.TreeFile
	count   int
	bytes   int64
	secrets []string
}

// hex returns the digest without its "sha256:" prefix.
func (r *deltaRelease) hex() string { return strings.TrimPrefix(r.digest, digest.Prefix) }

// hashCache remembers the sha256 of the files a push hashed, by path, size
// and mtime, so that a push under --watch hashes only what changed since
// the last one, as git's index does.
type hashCache map[string]cachedHash

type cachedHash struct {
	size    int64
	modTime time.Time
	hex     string
}

// racyWindow: a file modified less than this before it was hashed is
// hashed again next time, because a second write within the file system's
// timestamp granularity could leave its size and mtime as they were.
const racyWindow = 2 * time.Second

// sum returns the sha256 of f's content, from the cache when f has not
// changed since it was hashed.
func (c hashCache) sum(f pack.TreeFile, now time.Time) (string, error) {
	if h, ok := c[f.Abs]; ok && h.size == f.Size && h.modTime.Equal(f.ModTime) {
		return h.hex, nil
	}
	file, err := os.Open(f.Abs)
	if err != nil {
		return "", err
	}
	defer file.Close()
	h := sha256.New()
	n, err := io.Copy(h, file)
	if err != nil {
		return "", err
	}
	if n != f.Size {
		return "", fmt.Errorf("%s changed while it was read (%d bytes, then %d): push again", f.Path, f.Size, n)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if now.Sub(f.ModTime) > racyWindow {
		c[f.Abs] = cachedHash{size: f.Size, modTime: f.ModTime, hex: sum}
	}
	return sum, nil
}

// buildDelta hashes the files of the tree in dir and makes them a delta
// release.
func buildDelta(dir string, o pack.Options, cache hashCache) (*deltaRelease, error) {
	t, err := pack.Walk(dir, o)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	r := &deltaRelease{files: map[string]pack.TreeFile{}, secrets: t.Secrets()}
	entries := make([]manifest.Entry, 0, len(t.Files))
	for _, f := range t.Files {
		sum, err := cache.sum(f, now)
		if err != nil {
			return nil, fmt.Errorf("pack %s: %w", dir, err)
		}
		mode := manifest.ModeFile
		if f.Exec {
			mode = manifest.ModeExec
		}
		entries = append(entries, manifest.Entry{Path: f.Path, Mode: mode, Size: f.Size, Hex: sum})
		if _, ok := r.files[sum]; !ok {
			r.files[sum] = f
		}
		r.bytes += f.Size
	}
	r.count = len(entries)
	if r.root, r.parts, err = manifest.Build(entries); err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	r.digest = digest.Of(r.root)
	return r, nil
}

// maxChildRounds: the first answer of Missing names the missing parts and
// the missing files of the parts the store has; the second, the files of
// the parts just uploaded; the third must be empty.
const maxChildRounds = 3

// uploadDelta puts the delta release r in the store: its root, then what
// the store says it lacks of the parts and files, in at most two uploads.
// A file already in the store for any earlier release is not sent again.
func (p *pusher) uploadDelta(ctx context.Context, d *appsv1.Deployment, r *deltaRelease, ref store.BlobRef) error {
	if err := p.announce(ctx, d, r.digest); err != nil {
		return err
	}
	// The root is small: sent without asking, the store keeps one copy.
	if err := p.store.Put(ctx, ref, r.root); err != nil {
		return p.storeError(err)
	}
	parts := map[string][]byte{}
	for _, part := range r.parts {
		parts[part.Hex] = part.Data
	}
	var files, sentParts int
	sentBytes := int64(len(r.root))
	for range maxChildRounds {
		m, err := p.store.Missing(ctx, ref)
		if err != nil {
			return p.storeError(err)
		}
		if len(m.Parts)+len(m.Files) == 0 {
			fmt.Fprintf(p.out, "uploaded %d of %d files and %d of %d parts, %d bytes with the root\n", files, r.count, sentParts, len(r.parts), sentBytes)
			return nil
		}
		var children []store.Child
		for _, h := range m.Parts {
			data, ok := parts[h]
			if !ok {
				return fmt.Errorf("store: asks for part %s, which release %s does not have", h, r.digest)
			}
			children = append(children, store.Child{Hex: h, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(data)), nil
			}})
		}
		var size int64
		for _, c := range children {
			size += c.Size
		}
		for _, h := range m.Files {
			f, ok := r.files[h]
			if !ok {
				return fmt.Errorf("store: asks for file %s, which release %s does not have", h, r.digest)
			}
			children = append(children, store.Child{Hex: h, Size: f.Size, Open: func() (io.ReadCloser, error) { return os.Open(f.Abs) }})
			size += f.Size
		}
		p.store.Progress = uploadProgress(p.out, int(size))
		if err := p.store.PutChildren(ctx, ref, children); err != nil {
			return p.storeError(fmt.Errorf("%w\n(a file that changed after it was hashed has another sha256: push again)", err))
		}
		files += len(m.Files)
		sentParts += len(m.Parts)
		sentBytes += size
	}
	return fmt.Errorf("store: still lacks parts of release %s after %d uploads", r.digest, maxChildRounds)
}
