package store

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aether-dev/aether-devhot/pkg/manifest"
)

// Errors of the delta release's endpoints, which the HTTP handler maps to
// status codes.
var (
	// ErrNotRoot: the blob is stored but is not a delta release's root.
	ErrNotRoot = errors.New("not a delta release's root")
	// ErrNotReferenced: the blob is neither a part of the root nor a file
	// of one of its stored parts, so the root does not let it in.
	ErrNotReferenced = errors.New("not a part or a file of the root")
)

// Missing is what a delta release's root still lacks in the store: the
// parts it lists that are not stored (or stored but not as the root lists
// them), and the files of its stored parts that are not stored, each once
// and in the root's order. It is the JSON body of GET BlobRef.MissingPath,
// which Client.Missing decodes.
type Missing struct {
	Parts []string `json:"parts"`
	Files []string `json:"files"`
}

// ChildrenStored is the JSON body of a 201 to POST BlobRef.ChildrenPath:
// how many of the entries were new to the store, and their bytes.
type ChildrenStored struct {
	Stored int   `json:"stored"`
	Bytes  int64 `json:"bytes"`
}

// sum is a sha256 in 32 bytes rather than 64 hex digits: the index of a
// release of 100 000 files holds as many.
type sum [32]byte

// sumOf decodes a digest that validScope accepted.
func sumOf(h string) sum {
	var x sum
	_, _ = hex.Decode(x[:], []byte(h))
	return x
}

func (x sum) String() string { return hex.EncodeToString(x[:]) }

// blobID is a blob of a namespace, in the release index.
type blobID struct {
	ns  string
	sum sum
}

// partRef is a root's line for one part.
type partRef struct {
	sum   sum
	files int
}

// releaseIndex remembers, for every stored root, its parts, and for every
// stored part that parsed as a stored root lists it, its files; so that
// what a release lacks, and what a pinned release keeps, is known without
// reading a blob. Store.mu guards it.
type releaseIndex struct {
	roots map[blobID][]partRef
	parts map[blobID][]sum
}

func newReleaseIndex() releaseIndex {
	return releaseIndex{roots: map[blobID][]partRef{}, parts: map[blobID][]sum{}}
}

func (x releaseIndex) addRoot(ns, id string, r *manifest.Root) {
	refs := make([]partRef, len(r.Parts))
	for i, p := range r.Parts {
		refs[i] = partRef{sumOf(p.Hex), p.Files}
	}
	x.roots[blobID{ns, sumOf(id)}] = refs
}

func (x releaseIndex) addPart(ns, id string, entries []manifest.Entry) {
	files := make([]sum, len(entries))
	for i, e := range entries {
		files[i] = sumOf(e.Hex)
	}
	x.parts[blobID{ns, sumOf(id)}] = files
}

// drop forgets an evicted blob.
func (x releaseIndex) drop(ns, id string) {
	b := blobID{ns, sumOf(id)}
	delete(x.roots, b)
	delete(x.parts, b)
}

// rootParts returns the parts of stored root id, ErrNotFound if it is not
// stored, ErrNotRoot if it is not a root. s.mu is held.
func (s *Store) rootParts(ns, id string) ([]partRef, error) {
	if _, ok := s.index[key{ns, id}]; !ok {
		return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, ns, id)
	}
	parts, ok := s.refs.roots[blobID{ns, sumOf(id)}]
	if !ok {
		return nil, fmt.Errorf("%w: blob %s/%s does not start with %q", ErrNotRoot, ns, id, manifest.RootMagic[:len(manifest.RootMagic)-1])
	}
	return parts, nil
}

// Missing answers what root id of namespace ns lacks; ErrNotFound if it is
// not stored, ErrNotRoot if it is not a root.
func (s *Store) Missing(ns, id string) (Missing, error) {
	if err := validScope(ns, id); err != nil {
		return Missing{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	parts, err := s.rootParts(ns, id)
	if err != nil {
		return Missing{}, err
	}
	m := Missing{Parts: []string{}, Files: []string{}}
	seen := map[sum]struct{}{}
	for _, p := range parts {
		files, ok := s.refs.parts[blobID{ns, p.sum}]
		if !ok {
			m.Parts = append(m.Parts, p.sum.String())
			continue
		}
		for _, f := range files {
			if _, dup := seen[f]; dup {
				continue
			}
			seen[f] = struct{}{}
			if h := f.String(); !s.has(ns, h) {
				m.Files = append(m.Files, h)
			}
		}
	}
	return m, nil
}

// has is Has with s.mu held.
func (s *Store) has(ns, id string) bool {
	_, ok := s.index[key{ns, id}]
	return ok
}

// pins returns what makeRoom must keep: the blobs that s.pinned names, and
// the parts and files of the stored roots it names. The set of those
// children is built on first need, once per makeRoom, so that a store with
// room to spare never builds it. s.mu is held.
func (s *Store) pins() func(*entry) bool {
	var children map[blobID]struct{}
	return func(e *entry) bool {
		if s.pinned(e.ns, e.hex) {
			return true
		}
		if len(s.refs.roots) == 0 {
			return false
		}
		if children == nil {
			children = s.pinnedChildren()
		}
		_, ok := children[blobID{e.ns, sumOf(e.hex)}]
		return ok
	}
}

// pinnedChildren is the set of parts and files of the pinned roots. s.mu
// is held.
func (s *Store) pinnedChildren() map[blobID]struct{} {
	set := map[blobID]struct{}{}
	for root, parts := range s.refs.roots {
		if !s.pinned(root.ns, root.sum.String()) {
			continue
		}
		for _, p := range parts {
			part := blobID{root.ns, p.sum}
			set[part] = struct{}{}
			for _, f := range s.refs.parts[part] {
				set[blobID{root.ns, f}] = struct{}{}
			}
		}
	}
	return set
}

// indexReleases builds the release index at Open: every blob that starts
// with manifest.RootMagic and parses is a root, and its stored parts are
// parsed as it lists them.
func (s *Store) indexReleases() error {
	var roots []key
	for e := s.lru.Front(); e != nil; e = e.Next() {
		ent := e.Value.(*entry)
		head, err := readStart(s.path(ent.ns, ent.hex), len(manifest.RootMagic))
		if err != nil {
			return err
		}
		if !manifest.IsRoot(head) {
			continue
		}
		// A root that does not parse was not stored by Put; it stays a
		// plain blob.
		if r, err := readRoot(s.path(ent.ns, ent.hex)); err == nil {
			s.refs.addRoot(ent.ns, ent.hex, r)
			roots = append(roots, ent.key)
		}
	}
	for _, k := range roots {
		s.indexParts(k.ns, k.hex)
	}
	return nil
}

// indexParts parses the stored parts of root id that are not indexed yet.
// A part that does not parse as the root lists it stays unindexed:
// Missing lists it, and uploading it says why.
func (s *Store) indexParts(ns, id string) {
	s.mu.Lock()
	var todo []partRef
	for _, p := range s.refs.roots[blobID{ns, sumOf(id)}] {
		if _, ok := s.refs.parts[blobID{ns, p.sum}]; !ok && s.has(ns, p.sum.String()) {
			todo = append(todo, p)
		}
	}
	s.mu.Unlock()
	for _, p := range todo {
		h := p.sum.String()
		entries, err := readPart(s.path(ns, h), manifest.PartRef{Hex: h, Files: p.files})
		if err != nil {
			continue
		}
		s.mu.Lock()
		if s.has(ns, h) {
			s.refs.addPart(ns, h, entries)
		}
		s.mu.Unlock()
	}
}

// readRoot parses the root in file path under manifest's default limits.
func readRoot(path string) (*manifest.Root, error) {
	b, err := readSmall(path, manifest.MaxRootBytes(manifest.Limits{}))
	if err != nil {
		return nil, err
	}
	r, err := manifest.ParseRoot(b, manifest.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	return r, nil
}

// readPart parses the part in file path as ref.
func readPart(path string, ref manifest.PartRef) ([]manifest.Entry, error) {
	b, err := readSmall(path, manifest.MaxPartBytes)
	if err != nil {
		return nil, err
	}
	entries, err := manifest.ParsePart(b, ref, manifest.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	return entries, nil
}

// readSmall reads file path, which a manifest's limit caps at most bytes.
func readSmall(path string, most int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(most)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > most {
		return nil, fmt.Errorf("%w: over the %d bytes that a manifest may have", ErrBadManifest, most)
	}
	return b, nil
}

// readStart returns up to n first bytes of file path.
func readStart(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return b[:m], nil
}
