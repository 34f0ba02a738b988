// Package store is the artifact store that `kubectl devhot push` uploads
// to and the fetchers download from: content-addressed blobs on a local
// directory (an emptyDir or a PVC), capped in size, evicting the least
// recently used. A blob's name is its sha256, checked on upload, so a
// blob can never change once stored and plain http inside the cluster
// cannot serve tampered code: the fetcher checks the digest again.
package store

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/digest"
)

// Errors of Put, which the HTTP handler maps to status codes.
var (
	// ErrDigestMismatch: the body's sha256 is not the one in the path.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrTooLarge: the blob is over Limits.MaxBlobBytes.
	ErrTooLarge = errors.New("blob too large")
	// ErrNotFound: no such blob, or it was evicted.
	ErrNotFound = errors.New("blob not found")
)

// Limits caps what the store keeps.
type Limits struct {
	// MaxBlobBytes caps one blob. The fetcher's default cap on an
	// artifact is the same 512 MiB.
	MaxBlobBytes int64
	// MaxTotalBytes caps all blobs together; storing a blob evicts the
	// least recently stored or served ones until the rest fit.
	MaxTotalBytes int64
}

// DefaultLimits fit the chart's default emptyDir sizeLimit of 4 GiB with
// room for uploads in flight.
var DefaultLimits = Limits{MaxBlobBytes: 512 << 20, MaxTotalBytes: 2 << 30}

// Store keeps blobs in dir/blobs/<hex>; uploads are written to dir/tmp
// first and renamed into place once their digest is checked, so a reader
// never sees a partial blob.
type Store struct {
	lim       Limits
	blobs     string
	tmp       string
	mu        sync.Mutex
	lru       *list.List // of *entry, most recently used first
	index     map[string]*list.Element
	total     int64
	onEvicted func(id string)
}

type entry struct {
	hex  string
	size int64
}

// Option configures Open.
type Option func(*Store)

// WithEvictionHook calls f with the id of each evicted blob, for logs.
func WithEvictionHook(f func(id string)) Option {
	return func(s *Store) { s.onEvicted = f }
}

// Open opens or creates a store in dir. Blobs already there are kept,
// ordered by their mtimes (Get refreshes them) so that recency survives a
// restart on a PVC; leftovers of interrupted uploads are removed.
func Open(dir string, lim Limits, opts ...Option) (*Store, error) {
	if lim.MaxBlobBytes <= 0 || lim.MaxTotalBytes < lim.MaxBlobBytes {
		return nil, fmt.Errorf("store limits: want 0 < max blob bytes (%d) <= max total bytes (%d)", lim.MaxBlobBytes, lim.MaxTotalBytes)
	}
	s := &Store{
		lim:       lim,
		blobs:     filepath.Join(dir, "blobs"),
		tmp:       filepath.Join(dir, "tmp"),
		lru:       list.New(),
		index:     map[string]*list.Element{},
		onEvicted: func(string) {},
	}
	for _, o := range opts {
		o(s)
	}
	if err := os.RemoveAll(s.tmp); err != nil {
		return nil, err
	}
	for _, d := range []string{s.blobs, s.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	des, err := os.ReadDir(s.blobs)
	if err != nil {
		return nil, err
	}
	type found struct {
		entry
		mtime time.Time
	}
	var all []found
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() || !digest.IsHex(de.Name()) {
			continue
		}
		all = append(all, found{entry{de.Name(), fi.Size()}, fi.ModTime()})
	}
	slices.SortFunc(all, func(a, b found) int { return b.mtime.Compare(a.mtime) })
	for _, f := range all {
		s.index[f.hex] = s.lru.PushBack(&entry{f.hex, f.size})
		s.total += f.size
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s, s.evict("")
}

// Has reports whether the blob is stored, without counting as a use.
func (s *Store) Has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.index[id]
	return ok
}

// Put stores the blob read from r if its sha256 is id (64 lowercase hex digits). size is the
// announced length, -1 if unknown; a blob known to be over the cap is
// refused before anything is read. created is false when the blob was
// already stored, by an earlier or a concurrent Put.
func (s *Store) Put(id string, r io.Reader, size int64) (created bool, err error) {
	if !digest.IsHex(id) {
		return false, fmt.Errorf("%q is not 64 lowercase hex digits", id)
	}
	if size > s.lim.MaxBlobBytes {
		return false, fmt.Errorf("%w: %d bytes, the cap is %d", ErrTooLarge, size, s.lim.MaxBlobBytes)
	}
	if s.touch(id) {
		stamp(s.path(id))
		return false, nil
	}
	f, err := os.CreateTemp(s.tmp, id+"-")
	if err != nil {
		return false, err
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, s.lim.MaxBlobBytes+1))
	if err = errors.Join(err, f.Close()); err != nil {
		return false, fmt.Errorf("receiving blob: %w", err)
	}
	if n > s.lim.MaxBlobBytes {
		return false, fmt.Errorf("%w: over the cap of %d bytes", ErrTooLarge, s.lim.MaxBlobBytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != id {
		return false, fmt.Errorf("%w: body has sha256 %s, path says %s", ErrDigestMismatch, got, id)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.index[id]; ok {
		s.lru.MoveToFront(e)
		return false, nil
	}
	stamp(f.Name())
	if err := os.Rename(f.Name(), s.path(id)); err != nil {
		return false, err
	}
	s.index[id] = s.lru.PushFront(&entry{id, n})
	s.total += n
	return true, s.evict(id)
}

// Get opens the blob and counts it as used. The caller closes the file;
// an eviction meanwhile does not disturb a reader that holds it open.
func (s *Store) Get(id string) (*os.File, error) {
	if !s.touch(id) {
		return nil, ErrNotFound
	}
	f, err := os.Open(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound // evicted since touch
	}
	if err != nil {
		return nil, err
	}
	stamp(f.Name())
	return f, nil
}

// stamp records a use in the file's mtime, from which Open restores the
// order after a restart. File systems keep coarse timestamps, so the time
// is set explicitly. Best effort: only that order depends on it.
func stamp(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

// Total is the size of all stored blobs.
func (s *Store) Total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// touch marks id as just used and reports whether it is stored.
func (s *Store) touch(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.index[id]
	if ok {
		s.lru.MoveToFront(e)
	}
	return ok
}

// evict removes least recently used blobs, never keep, until the total
// fits. s.mu is held.
func (s *Store) evict(keep string) error {
	var errs []error
	for e := s.lru.Back(); e != nil && s.total > s.lim.MaxTotalBytes; {
		prev := e.Prev()
		ent := e.Value.(*entry)
		if ent.hex != keep {
			if err := os.Remove(s.path(ent.hex)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			s.lru.Remove(e)
			delete(s.index, ent.hex)
			s.total -= ent.size
			s.onEvicted(ent.hex)
		}
		e = prev
	}
	return errors.Join(errs...)
}

func (s *Store) path(id string) string { return filepath.Join(s.blobs, id) }
