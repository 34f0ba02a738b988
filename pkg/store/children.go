package store

import (
	"fmt"
	"io"
	"os"

	"github.com/aether-dev/aether-devhot/pkg/manifest"
)

// ChildUpload is one request's upload of the parts and files of a delta
// release's root. It holds one upload slot from Children to Close, however
// many children it stores.
type ChildUpload struct {
	s       *Store
	ns      string
	root    string
	release func()
	// What the root references, as of the last refresh and the parts
	// stored since: the files count of each part, and the files.
	parts map[sum]int
	files map[sum]struct{}
}

// Children starts an upload of the parts and files of root id in
// namespace ns: ErrNotFound if the root is not stored, ErrNotRoot if it is
// not a root, ErrBusy if no upload slot is free. The caller calls Close.
func (s *Store) Children(ns, id string) (*ChildUpload, error) {
	if err := validScope(ns, id); err != nil {
		return nil, err
	}
	u := &ChildUpload{s: s, ns: ns, root: id}
	if err := u.refresh(); err != nil {
		return nil, err
	}
	release, err := s.acquire(ns)
	if err != nil {
		return nil, err
	}
	u.release = release
	return u, nil
}

// Close gives the upload slot back.
func (u *ChildUpload) Close() { u.release() }

// refresh reads what the root references from the release index, which
// other uploads may have added to.
func (u *ChildUpload) refresh() error {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	parts, err := u.s.rootParts(u.ns, u.root)
	if err != nil {
		return err
	}
	u.parts = make(map[sum]int, len(parts))
	u.files = map[sum]struct{}{}
	for _, p := range parts {
		u.parts[p.sum] = p.files
		for _, f := range u.s.refs.parts[blobID{u.ns, p.sum}] {
			u.files[f] = struct{}{}
		}
	}
	return nil
}

// references reports whether x is a part of the root, with its files
// count, or a file of one of its stored parts.
func (u *ChildUpload) references(x sum) (files int, isPart, isFile bool) {
	files, isPart = u.parts[x]
	_, isFile = u.files[x]
	return files, isPart, isFile
}

// Put stores one child of the root, read from r, if its sha256 is id: a
// part of the root, which must parse as the root lists it, or a file of a
// part stored before (in this upload or an earlier one). size is the
// announced length, -1 if unknown. Anything else is ErrNotReferenced, and
// the caps, quota and eviction are Store.Put's. created is false when the
// blob was already stored.
func (u *ChildUpload) Put(id string, r io.Reader, size int64) (created bool, err error) {
	if err := validScope(u.ns, id); err != nil {
		return false, err
	}
	x := sumOf(id)
	files, isPart, isFile := u.references(x)
	if !isPart && !isFile {
		if err := u.refresh(); err != nil {
			return false, err
		}
		if files, isPart, isFile = u.references(x); !isPart && !isFile {
			return false, fmt.Errorf("%w: sha256:%s is not a part of root sha256:%s nor a file of its stored parts", ErrNotReferenced, id, u.root)
		}
	}
	if isPart && !isFile && size > int64(manifest.MaxPartBytes) {
		return false, fmt.Errorf("%w: part %s is %d bytes, more than %d", ErrBadManifest, id, size, manifest.MaxPartBytes)
	}
	if err := u.s.precheck(u.ns, id, size); err != nil {
		return false, err
	}
	tmp, n, err := u.s.receive(u.ns, id, r)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp) // after the rename, a no-op
	if !isPart {
		return u.s.commit(u.ns, id, tmp, n, nil)
	}
	entries, err := readPart(tmp, manifest.PartRef{Hex: id, Files: files})
	if err != nil {
		if isFile {
			// The bytes of a file that happen to start like a part.
			return u.s.commit(u.ns, id, tmp, n, nil)
		}
		return false, err
	}
	created, err = u.s.commit(u.ns, id, tmp, n, func() { u.s.refs.addPart(u.ns, id, entries) })
	if err == nil {
		for _, e := range entries {
			u.files[sumOf(e.Hex)] = struct{}{}
		}
	}
	return created, err
}
