// Package store is the artifact store that `kubectl devhot push` uploads
// to and the fetchers download from: content-addressed blobs on a local
// directory (an emptyDir or a PVC), kept per namespace, capped per
// namespace and in total, evicting the least recently used blobs that no
// Deployment still asks for. A blob's name is its sha256, checked on
// upload, so a blob can never change once stored and plain http inside the
// cluster cannot serve tampered code: the fetcher checks the digest again.
//
// Store is the pure core on a directory; Handler is its HTTP edge, which
// asks an Access (package kubeaccess on a cluster) who may read and who may
// upload; Client is what the CLI uploads with.
package store

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// Errors of Put, which the HTTP handler maps to status codes.
var (
	// ErrDigestMismatch: the body's sha256 is not the one in the path.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrTooLarge: the blob is over Limits.MaxBlobBytes.
	ErrTooLarge = errors.New("blob too large")
	// ErrNotGzip: the body starts neither with a gzip header nor with a
	// delta release's root (manifest.RootMagic), so it cannot be a .tar.gz
	// or a root; nothing of it was written.
	ErrNotGzip = errors.New("not gzip")
	// ErrBadManifest: a root or a part that does not parse; nothing of it
	// was stored.
	ErrBadManifest = errors.New("bad delta release")
	// ErrQuota: the namespace's blobs that Deployments still ask for leave
	// no room for this one under Limits.NamespaceQuotaBytes.
	ErrQuota = errors.New("namespace quota exceeded")
	// ErrFull: the blobs that Deployments still ask for leave no room for
	// this one under Limits.MaxTotalBytes.
	ErrFull = errors.New("store full")
	// ErrBusy: Limits.MaxUploads (or MaxNamespaceUploads) uploads are in
	// flight; try again shortly.
	ErrBusy = errors.New("too many uploads in flight")
	// ErrNotFound: no such blob, or it was evicted.
	ErrNotFound = errors.New("blob not found")
)

// Limits caps what the store keeps and what it receives at once.
type Limits struct {
	// MaxBlobBytes caps one blob. The fetcher's default cap on an
	// artifact is the same 512 MiB.
	MaxBlobBytes int64
	// MaxTotalBytes caps all blobs together; storing a blob evicts the
	// least recently stored or served blobs that no Deployment asks for
	// until the rest fit.
	MaxTotalBytes int64
	// NamespaceQuotaBytes caps the blobs of one namespace; storing one
	// evicts that namespace's own least recently used blobs first, so one
	// namespace's pushes cannot take more than this from the others.
	NamespaceQuotaBytes int64
	// MaxUploads caps the uploads in flight. Each is written to tmp/ until
	// its digest is checked, so tmp/ never holds more than MaxUploads ×
	// MaxBlobBytes, however many clients stall.
	MaxUploads int
	// MaxNamespaceUploads caps the uploads in flight for one namespace, so
	// that one namespace cannot take every slot.
	MaxNamespaceUploads int
}

// DefaultLimits fit the chart's default emptyDir sizeLimit of 5 GiB: 2 GiB
// of blobs plus 4 uploads of 512 MiB in flight, with room to spare.
var DefaultLimits = Limits{
	MaxBlobBytes:        512 << 20,
	MaxTotalBytes:       2 << 30,
	NamespaceQuotaBytes: 1 << 30,
	MaxUploads:          4,
	MaxNamespaceUploads: 2,
}

// Ranges of each limit and of the upload timeout, which cmd/store checks
// its flags and environment against (docs/settings.md) and the chart's
// values.schema.json repeats; Validate then checks that they fit together.
var (
	// BlobBytesRange: no fetcher downloads a larger artifact.
	BlobBytesRange = bounds.Int{Min: 1, Max: sidecar.MaxArtifactBytesRange.Max, Unit: "bytes"}
	// TotalBytesRange, of MaxTotalBytes and NamespaceQuotaBytes: a store on
	// one volume holds less than 1 TiB, and sums of blob sizes stay far
	// from overflowing.
	TotalBytesRange = bounds.Int{Min: 1, Max: 1 << 40, Unit: "bytes"}
	// UploadsRange, of MaxUploads and MaxNamespaceUploads: tmp/ holds up to
	// MaxUploads × MaxBlobBytes; 64 of 512 MiB is already 32 GiB.
	UploadsRange = bounds.Int{Min: 1, Max: 64, Unit: "uploads"}
	// UploadTimeoutRange: push waits an hour at most (--timeout), and a
	// stalled upload holds a slot and up to MaxBlobBytes of tmp/ until its
	// timeout.
	UploadTimeoutRange = bounds.Duration{Min: time.Second, Max: time.Hour}
)

// Validate says which limit cannot work with the others.
func (l Limits) Validate() error {
	if l.MaxBlobBytes <= 0 || l.NamespaceQuotaBytes < l.MaxBlobBytes || l.MaxTotalBytes < l.NamespaceQuotaBytes {
		return fmt.Errorf("store limits: want 0 < max blob bytes (%d) <= namespace quota bytes (%d) <= max total bytes (%d)",
			l.MaxBlobBytes, l.NamespaceQuotaBytes, l.MaxTotalBytes)
	}
	if l.MaxNamespaceUploads < 1 || l.MaxUploads < l.MaxNamespaceUploads {
		return fmt.Errorf("store limits: want 1 <= max namespace uploads (%d) <= max uploads (%d)", l.MaxNamespaceUploads, l.MaxUploads)
	}
	return nil
}

// Reasons a blob is removed, given to the hook of WithRemovalHook.
const (
	// RemovedEvicted: the least recently used blob that no Deployment asks
	// for, removed to make room.
	RemovedEvicted = "evicted"
	// RemovedUnscoped: a blob of the layout before blobs were kept per
	// namespace, which no request can name any more.
	RemovedUnscoped = "unscoped"
)

// Store keeps blobs in dir/blobs/<namespace>/<hex>; uploads are written to
// dir/tmp first and renamed into place once their digest is checked, so a
// reader never sees a partial blob.
type Store struct {
	lim       Limits
	blobs     string
	tmp       string
	pinned    func(ns, hex string) bool
	onRemoved func(ns, hex, reason string)

	mu        sync.Mutex
	lru       *list.List // of *entry, most recently used first
	index     map[key]*list.Element
	total     int64
	nsTotal   map[string]int64
	uploads   int
	nsUploads map[string]int
	refs      releaseIndex
}

type key struct{ ns, hex string }

type entry struct {
	key
	size int64
}

// Option configures Open.
type Option func(*Store)

// WithRemovalHook calls f for each blob the store removes, with one of
// the Removed* reasons, for logs.
func WithRemovalHook(f func(ns, hex, reason string)) Option {
	return func(s *Store) { s.onRemoved = f }
}

// WithPins makes eviction skip every blob for which pinned is true: the
// current and the announced digests of the dev-hot Deployments (package
// kubeaccess), which new pods still need; and, when such a blob is a
// delta release's root, its parts and files. pinned is called with the
// store's lock held and must not call back into the store.
func WithPins(pinned func(ns, hex string) bool) Option {
	return func(s *Store) { s.pinned = pinned }
}

// Open opens or creates a store in dir. Blobs already there are kept,
// ordered by their mtimes (Get refreshes them) so that recency survives a
// restart on a PVC; leftovers of interrupted uploads are removed, and so are
// blobs of the unscoped layout of earlier versions. A store over its new
// limits shrinks with the next upload, never at Open, because which blobs
// are pinned is not known yet.
func Open(dir string, lim Limits, opts ...Option) (*Store, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		lim:       lim,
		blobs:     filepath.Join(dir, "blobs"),
		tmp:       filepath.Join(dir, "tmp"),
		pinned:    func(string, string) bool { return false },
		onRemoved: func(string, string, string) {},
		lru:       list.New(),
		index:     map[key]*list.Element{},
		nsTotal:   map[string]int64{},
		nsUploads: map[string]int{},
		refs:      newReleaseIndex(),
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
	found, err := s.scan()
	if err != nil {
		return nil, err
	}
	slices.SortFunc(found, func(a, b scanned) int { return b.mtime.Compare(a.mtime) })
	for _, f := range found {
		s.index[f.key] = s.lru.PushBack(&entry{f.key, f.size})
		s.total += f.size
		s.nsTotal[f.ns] += f.size
	}
	if err := s.indexReleases(); err != nil {
		return nil, err
	}
	return s, nil
}

type scanned struct {
	entry
	mtime time.Time
}

// scan lists the blobs under blobs/ and removes those of the unscoped
// layout (blobs/<hex>).
func (s *Store) scan() ([]scanned, error) {
	nss, err := os.ReadDir(s.blobs)
	if err != nil {
		return nil, err
	}
	var all []scanned
	for _, n := range nss {
		if n.Type().IsRegular() && digest.IsHex(n.Name()) {
			if err := os.Remove(filepath.Join(s.blobs, n.Name())); err != nil {
				return nil, err
			}
			s.onRemoved("", n.Name(), RemovedUnscoped)
			continue
		}
		if !n.IsDir() || len(validation.IsDNS1123Label(n.Name())) > 0 {
			continue
		}
		des, err := os.ReadDir(filepath.Join(s.blobs, n.Name()))
		if err != nil {
			return nil, err
		}
		for _, de := range des {
			fi, err := de.Info()
			if err != nil {
				return nil, err
			}
			if fi.Mode().IsRegular() && digest.IsHex(de.Name()) {
				all = append(all, scanned{entry{key{n.Name(), de.Name()}, fi.Size()}, fi.ModTime()})
			}
		}
	}
	return all, nil
}

// Has reports whether the blob is stored, without counting as a use.
func (s *Store) Has(ns, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.index[key{ns, id}]
	return ok
}

// Put stores the blob read from r in namespace ns if its sha256 is id: a
// .tar.gz, or a delta release's root, which must parse. size is the
// announced length, -1 if unknown; a blob known to be over the cap, or not
// to fit, is refused before anything is read. A body that starts with
// neither a gzip header nor a root's magic line is refused before anything
// is written. created is false when the blob was already stored, by an
// earlier or a concurrent Put; the body is checked then too.
func (s *Store) Put(ns, id string, r io.Reader, size int64) (created bool, err error) {
	if err := validScope(ns, id); err != nil {
		return false, err
	}
	if err := s.precheck(ns, id, size); err != nil {
		return false, err
	}
	release, err := s.acquire(ns)
	if err != nil {
		return false, err
	}
	defer release()

	head, isRoot, err := readHead(r)
	if err != nil {
		return false, err
	}
	tmp, n, err := s.receive(ns, id, io.MultiReader(bytes.NewReader(head), r))
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp) // after the rename, a no-op
	if !isRoot {
		return s.commit(ns, id, tmp, n, nil)
	}
	root, err := readRoot(tmp)
	if err != nil {
		return false, err
	}
	created, err = s.commit(ns, id, tmp, n, func() { s.refs.addRoot(ns, id, root) })
	if err == nil {
		s.indexParts(ns, id)
	}
	return created, err
}

// precheck refuses a blob whose announced size is over the cap or cannot
// fit, before anything is read. A blob already stored is received and
// checked all the same: a PUT is answered 2xx only for the bytes it names,
// so that it tells no one without them whether a digest is stored. The
// CLI asks first and uploads only what is missing.
func (s *Store) precheck(ns, id string, size int64) error {
	if size > s.lim.MaxBlobBytes {
		return fmt.Errorf("%w: %d bytes, the cap is %d", ErrTooLarge, size, s.lim.MaxBlobBytes)
	}
	if size < 0 || s.Has(ns, id) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.makeRoom(ns, size)
	return err
}

// receive writes r to a file in tmp/ through sha256, up to the cap, and
// returns its name and size once its digest is id; the caller removes it.
// On error nothing is left.
func (s *Store) receive(ns, id string, r io.Reader) (tmp string, n int64, err error) {
	f, err := os.CreateTemp(s.tmp, ns+"-"+id+"-")
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	n, err = io.Copy(io.MultiWriter(f, h), io.LimitReader(r, s.lim.MaxBlobBytes+1))
	if err = errors.Join(err, f.Close()); err != nil {
		return "", 0, fmt.Errorf("receiving blob: %w", err)
	}
	if n > s.lim.MaxBlobBytes {
		return "", 0, fmt.Errorf("%w: over the cap of %d bytes", ErrTooLarge, s.lim.MaxBlobBytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != id {
		return "", 0, fmt.Errorf("%w: body has sha256 %s, path says %s", ErrDigestMismatch, got, id)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return "", 0, err
	}
	return f.Name(), n, nil
}

// commit moves the received blob tmp of n bytes into place, making room
// for it, and calls indexed, if not nil, with s.mu held once it is stored,
// by this call or an earlier one. created is false when it was already
// stored.
func (s *Store) commit(ns, id, tmp string, n int64, indexed func()) (created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{ns, id}
	if e, ok := s.index[k]; ok {
		s.lru.MoveToFront(e)
		stamp(s.path(ns, id))
		if indexed != nil {
			indexed()
		}
		return false, nil
	}
	victims, err := s.makeRoom(ns, n)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Join(s.blobs, ns), 0o755); err != nil {
		return false, err
	}
	stamp(tmp)
	if err := os.Rename(tmp, s.path(ns, id)); err != nil {
		return false, err
	}
	s.index[k] = s.lru.PushFront(&entry{k, n})
	s.total += n
	s.nsTotal[ns] += n
	if indexed != nil {
		indexed()
	}
	return true, s.evict(victims)
}

// readHead reads the start of a body PUT at a blob path, as little as
// tells a gzip header or a root's magic line from anything else, so that
// anything else is refused before a byte is written.
func readHead(r io.Reader) (head []byte, isRoot bool, err error) {
	head = make([]byte, max(gzipHeaderLen, len(manifest.RootMagic)))
	n, err := io.ReadFull(r, head[:gzipHeaderLen])
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, false, fmt.Errorf("%w: the body is %d bytes, shorter than a gzip header: %s", ErrNotGzip, n, wantBlob)
	} else if err != nil {
		return nil, false, fmt.Errorf("receiving blob: %w", err)
	}
	if checkGzipHeader(head[:n]) == nil {
		return head[:n], false, nil
	}
	if strings.HasPrefix(manifest.RootMagic, string(head[:n])) {
		m, err := io.ReadFull(r, head[n:])
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, false, fmt.Errorf("receiving blob: %w", err)
		}
		if n += m; manifest.IsRoot(head[:n]) {
			return head[:n], true, nil
		}
	}
	return nil, false, fmt.Errorf("%w: the body starts % x, not a gzip header (1f 8b 08) nor %q: %s",
		ErrNotGzip, head[:4], strings.TrimSpace(manifest.RootMagic), wantBlob)
}

// wantBlob tells a pusher what a blob path takes.
const wantBlob = "want a .tar.gz or a delta release's root"

// acquire takes an upload slot for ns, or says why there is none.
func (s *Store) acquire(ns string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.uploads >= s.lim.MaxUploads {
		return nil, fmt.Errorf("%w: %d uploads are in flight, the most the store takes at once", ErrBusy, s.uploads)
	}
	if s.nsUploads[ns] >= s.lim.MaxNamespaceUploads {
		return nil, fmt.Errorf("%w: namespace %s has %d uploads in flight, the most one namespace may", ErrBusy, ns, s.nsUploads[ns])
	}
	s.uploads++
	s.nsUploads[ns]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.uploads--
		if s.nsUploads[ns]--; s.nsUploads[ns] == 0 {
			delete(s.nsUploads, ns)
		}
	}, nil
}

// makeRoom returns the blobs to evict so that n more bytes of namespace ns
// fit under its quota and under the total cap: that namespace's least
// recently used first, then anyone's, never a pinned one. When the pinned
// blobs leave no room it returns ErrQuota or ErrFull and evicts nothing.
// s.mu is held.
func (s *Store) makeRoom(ns string, n int64) ([]*list.Element, error) {
	needNS := s.nsTotal[ns] + n - s.lim.NamespaceQuotaBytes
	needAll := s.total + n - s.lim.MaxTotalBytes
	var victims []*list.Element
	taken := map[*list.Element]bool{}
	take := func(e *list.Element) {
		ent := e.Value.(*entry)
		victims = append(victims, e)
		taken[e] = true
		if ent.ns == ns {
			needNS -= ent.size
		}
		needAll -= ent.size
	}
	pinned := s.pins()
	for e := s.lru.Back(); e != nil && needNS > 0; e = e.Prev() {
		if ent := e.Value.(*entry); ent.ns == ns && !pinned(ent) {
			take(e)
		}
	}
	if needNS > 0 {
		return nil, fmt.Errorf("%w: namespace %s holds %d bytes that its Deployments still ask for; %d bytes more would pass its quota of %d bytes",
			ErrQuota, ns, s.pinnedBytes(ns, pinned), n, s.lim.NamespaceQuotaBytes)
	}
	for e := s.lru.Back(); e != nil && needAll > 0; e = e.Prev() {
		if ent := e.Value.(*entry); !taken[e] && !pinned(ent) {
			take(e)
		}
	}
	if needAll > 0 {
		return nil, fmt.Errorf("%w: %d bytes are blobs that Deployments still ask for; %d bytes more would pass the store's cap of %d bytes",
			ErrFull, s.pinnedBytes("", pinned), n, s.lim.MaxTotalBytes)
	}
	return victims, nil
}

// pinnedBytes sums the pinned blobs of ns, or of all namespaces for "".
// s.mu is held.
func (s *Store) pinnedBytes(ns string, pinned func(*entry) bool) int64 {
	var sum int64
	for e := s.lru.Front(); e != nil; e = e.Next() {
		if ent := e.Value.(*entry); (ns == "" || ent.ns == ns) && pinned(ent) {
			sum += ent.size
		}
	}
	return sum
}

// evict removes victims. s.mu is held.
func (s *Store) evict(victims []*list.Element) error {
	var errs []error
	for _, e := range victims {
		ent := e.Value.(*entry)
		if err := os.Remove(s.path(ent.ns, ent.hex)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		s.lru.Remove(e)
		delete(s.index, ent.key)
		s.refs.drop(ent.ns, ent.hex)
		s.total -= ent.size
		if s.nsTotal[ent.ns] -= ent.size; s.nsTotal[ent.ns] == 0 {
			delete(s.nsTotal, ent.ns)
		}
		s.onRemoved(ent.ns, ent.hex, RemovedEvicted)
	}
	return errors.Join(errs...)
}

// Get opens the blob and counts it as used. The caller closes the file;
// an eviction meanwhile does not disturb a reader that holds it open.
func (s *Store) Get(ns, id string) (*os.File, error) {
	if !s.touch(ns, id) {
		return nil, ErrNotFound
	}
	f, err := os.Open(s.path(ns, id))
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

// NamespaceTotal is the size of the blobs of namespace ns.
func (s *Store) NamespaceTotal(ns string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nsTotal[ns]
}

// touch marks the blob as just used and reports whether it is stored.
func (s *Store) touch(ns, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.index[key{ns, id}]
	if ok {
		s.lru.MoveToFront(e)
	}
	return ok
}

func (s *Store) path(ns, id string) string { return filepath.Join(s.blobs, ns, id) }
