package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// deltaMtime is the mtime of every file the fetcher writes for a delta
// release. A file of a kept release is copied into the next one only if
// it still has it: an app that wrote to the file changed its mtime, and
// its content is no longer what the manifest says.
//
// A file is hard-linked, or copied when its inode is watched (watched.go).
var deltaMtime = time.Unix(1, 0)

// parallelGets is how many blobs of a delta release are downloaded at once.
const parallelGets = 8

// assembly is one delta release being assembled into a staging directory.
type assembly struct {
	w      *Workspace
	ctx    context.Context
	client *http.Client
	t      annotations.Target
	lim    Limits
	mlim   manifest.Limits
	// rel is the os.Root of releases/, which holds both the releases that
	// files are reused from and staging, the name of the staging
	// directory in it.
	rel     *os.Root
	staging string
	// used is what the release takes on disk, as Limits.MaxBytes counts
	// it for an archive: a reused file too, so that a release is refused
	// or not whatever the pod has on disk.
	used int64
	// received counts every byte downloaded, against lim.MaxBytes.
	received atomic.Int64
	reused   atomic.Int64
	// watched are the inodes that must not get another link.
	watched watchedInodes
}

// source is a file of a kept release that may be reused.
type source struct {
	release string
	entry   manifest.Entry
}

// manifestLimits are lim as package manifest counts them: a path's depth
// there is its directories.
func manifestLimits(lim Limits) manifest.Limits {
	return manifest.Limits{MaxFiles: lim.MaxEntries, MaxBytes: lim.MaxBytes, MaxPathLen: MaxPathBytes, MaxDepth: MaxPathDepth - 1}
}

// assemble makes the delta release whose root starts body in staging:
// it reads and verifies the root, gets its parts from the workspace's
// cache or downloads them, links or copies every file that a kept release
// has unchanged, and downloads the others from their sibling URLs.
func (w *Workspace) assemble(ctx context.Context, client *http.Client, t annotations.Target, lim Limits, staging string, body *meter) (Result, error) {
	a := &assembly{w: w, ctx: ctx, client: client, t: t, lim: lim, mlim: manifestLimits(lim), staging: filepath.Base(staging), watched: w.watched()}
	res := Result{Digest: t.Digest, Source: refresh.SourceDelta}
	rootBytes, err := io.ReadAll(io.LimitReader(body, int64(manifest.MaxRootBytes(a.mlim))+1))
	a.received.Store(body.n)
	res.Downloaded = body.n
	if err != nil {
		return res, err
	}
	if len(rootBytes) > manifest.MaxRootBytes(a.mlim) {
		return res, newError(refresh.ReasonSizeLimit, fmt.Errorf("GET %s: the root is longer than a release of %d files needs", t, lim.MaxEntries))
	}
	if sum := digest.HexOf(rootBytes); sum != t.Hex {
		return res, newError(refresh.ReasonChecksum, fmt.Errorf("GET %s: sha256 is %s, want %s", t, sum, t.Hex))
	}
	root, err := manifest.ParseRoot(rootBytes, a.mlim)
	if err != nil {
		return res, manifestError(fmt.Errorf("root of %s: %w", t, err))
	}
	// The root is saved first, so that a prune keeps the parts cached for
	// it while it is assembled.
	w.mu.Lock()
	w.assembling[t.Hex]++
	err = w.manifests.saveRoot(t.Hex, rootBytes)
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		if w.assembling[t.Hex]--; w.assembling[t.Hex] == 0 {
			delete(w.assembling, t.Hex)
		}
		w.mu.Unlock()
	}()
	if err != nil {
		return res, extractError(err)
	}
	if a.rel, err = os.OpenRoot(w.releases); err != nil {
		return res, extractError(err)
	}
	defer a.rel.Close()

	entries, err := a.parts(root)
	res.Downloaded = a.received.Load()
	if err != nil {
		return res, err
	}
	if err := a.mkdirs(entries); err != nil {
		return res, err
	}
	from := a.reusable(entries)
	err = parallel(ctx, len(entries), func(ctx context.Context, i int) error {
		return a.file(ctx, entries[i], from[entries[i].Hex])
	})
	res.Downloaded, res.Reused = a.received.Load(), int(a.reused.Load())
	if err != nil {
		return res, err
	}
	res.Files, res.Bytes = root.Files, root.Bytes
	return res, nil
}

// parts returns the release's files, from its parts in the cache or
// downloaded, each checked against its sha256 and the limits.
func (a *assembly) parts(root *manifest.Root) ([]manifest.Entry, error) {
	parts := make([][]manifest.Entry, len(root.Parts))
	err := parallel(a.ctx, len(root.Parts), func(ctx context.Context, i int) error {
		ref := root.Parts[i]
		b := a.w.manifests.part(ref.Hex)
		if b == nil {
			var buf strings.Builder
			if err := a.get(ctx, ref.Hex, int64(manifest.MaxPartBytes), &buf); err != nil {
				return err
			}
			b = []byte(buf.String())
			if err := a.w.manifests.savePart(ref.Hex, b); err != nil {
				return extractError(err)
			}
		}
		es, err := manifest.ParsePart(b, ref, a.mlim)
		if err != nil {
			return manifestError(err)
		}
		parts[i] = es
		return nil
	})
	if err != nil {
		return nil, err
	}
	entries, err := manifest.Join(root, parts, a.mlim)
	if err != nil {
		return nil, manifestError(err)
	}
	for _, e := range entries {
		// The extractor's rules too, such as the length of one name.
		if _, err := entryName(e.Path); err != nil {
			return nil, err
		}
		if err := a.charge(blocks(e.Size)); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// charge counts n bytes on disk against Limits.MaxBytes.
func (a *assembly) charge(n int64) error {
	if a.used += n; a.used > a.lim.MaxBytes {
		return newError(refresh.ReasonSizeLimit, fmt.Errorf(
			"the release would take more than %d bytes on disk (every file counts its size rounded up to %d bytes, every directory %d)", a.lim.MaxBytes, BlockSize, BlockSize))
	}
	return nil
}

// manifestError gives a refusal of package manifest its reason.
func manifestError(err error) error {
	switch {
	case errors.Is(err, manifest.ErrUnsafePath):
		return newError(refresh.ReasonUnsafePath, err)
	case errors.Is(err, manifest.ErrTooLarge):
		return newError(refresh.ReasonSizeLimit, err)
	default:
		return newError(refresh.ReasonManifest, err)
	}
}

// mkdirs makes the directories of entries in staging, each dirMode
// whatever the umask and each a block on disk.
func (a *assembly) mkdirs(entries []manifest.Entry) error {
	made := map[string]bool{".": true}
	var mkdir func(dir string) error
	mkdir = func(dir string) error {
		if made[dir] {
			return nil
		}
		if err := mkdir(path.Dir(dir)); err != nil {
			return err
		}
		if err := a.ctx.Err(); err != nil {
			return newError(refresh.ReasonDownload, fmt.Errorf("stopped: %w", context.Cause(a.ctx)))
		}
		if err := a.charge(BlockSize); err != nil {
			return err
		}
		name := a.staging + "/" + dir
		if err := a.rel.Mkdir(name, dirMode); err != nil {
			return extractError(err)
		}
		if err := a.rel.Chmod(name, dirMode); err != nil {
			return extractError(err)
		}
		made[dir] = true
		return nil
	}
	for _, e := range entries {
		if err := mkdir(path.Dir(e.Path)); err != nil {
			return err
		}
	}
	return nil
}

// reusable returns, by sha256, the files of kept releases with the
// content of a file of entries: those of the live release first, then the
// pinned one's, then the others'. Releases without a manifest (archives)
// have none.
func (a *assembly) reusable(entries []manifest.Entry) map[string][]source {
	want := make(map[string]bool, len(entries))
	for _, e := range entries {
		want[e.Hex] = true
	}
	a.w.mu.Lock()
	order := []string{a.w.currentHex(), a.w.pinned}
	a.w.mu.Unlock()
	if dirs, err := os.ReadDir(a.w.releases); err == nil {
		for _, d := range dirs {
			order = append(order, d.Name())
		}
	}
	from := map[string][]source{}
	seen := map[string]bool{a.t.Hex: true}
	for _, rel := range order {
		if seen[rel] || !digest.IsHex(rel) {
			continue
		}
		seen[rel] = true
		for _, e := range a.w.manifests.entries(rel) {
			if want[e.Hex] {
				from[e.Hex] = append(from[e.Hex], source{release: rel, entry: e})
			}
		}
	}
	return from
}

// file puts e into staging: linked or copied from one of from if that
// file is unchanged, otherwise downloaded.
func (a *assembly) file(ctx context.Context, e manifest.Entry, from []source) error {
	dst := a.staging + "/" + e.Path
	for _, s := range from {
		ok, err := a.reuse(s, e, dst)
		if err != nil {
			return err
		}
		if ok {
			a.reused.Add(1)
			return nil
		}
	}
	f, err := a.rel.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, modeOf(e))
	if err != nil {
		return extractError(err)
	}
	return a.finish(f, e, a.get(ctx, e.Hex, e.Size, f))
}

// finish closes a file written for e and gives it e's mode and
// deltaMtime; err is how writing it went.
func (a *assembly) finish(f *os.File, e manifest.Entry, err error) error {
	if err == nil {
		err = f.Chmod(modeOf(e))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = a.rel.Chtimes(a.staging+"/"+e.Path, deltaMtime, deltaMtime)
	}
	if err != nil {
		return extractError(err)
	}
	return nil
}

// reuse puts s's file at dst if it is unchanged (unchanged), and reports
// whether it did: a hard link, unless the inode is watched or the volume
// cannot link it; else a copy in the kernel (copy_file_range), which
// leaves the inode as it is, so that the app is not restarted.
func (a *assembly) reuse(s source, e manifest.Entry, dst string) (bool, error) {
	src := s.release + "/" + s.entry.Path
	fi, err := a.rel.Lstat(src)
	if err != nil || !unchanged(fi, e) {
		return false, nil
	}
	if a.watched.linkable(fi) {
		err := a.rel.Link(src, dst)
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, syscall.EXDEV) && !errors.Is(err, syscall.EMLINK) && !errors.Is(err, syscall.EPERM):
			return false, extractError(err)
		}
	}
	in, err := a.rel.Open(src)
	if err != nil {
		return false, nil
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !unchanged(fi, e) {
		return false, nil
	}
	out, err := a.rel.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, modeOf(e))
	if err != nil {
		return false, extractError(err)
	}
	// *os.File to *os.File: copy_file_range, no bytes through this process.
	n, err := io.Copy(out, io.LimitReader(in, e.Size+1))
	if err == nil && n != e.Size {
		out.Close()
		if err := a.rel.Remove(dst); err != nil {
			return false, extractError(err)
		}
		return false, nil
	}
	if err := a.finish(out, e, err); err != nil {
		return false, err
	}
	return true, nil
}

// unchanged reports whether fi is a file as the fetcher wrote it for e.
func unchanged(fi fs.FileInfo, e manifest.Entry) bool {
	return fi.Mode().IsRegular() && fi.Size() == e.Size && fi.Mode().Perm() == modeOf(e) && fi.ModTime().Equal(deltaMtime)
}

// modeOf is the mode the fetcher gives e's file.
func modeOf(e manifest.Entry) fs.FileMode {
	if e.Mode == manifest.ModeExec {
		return execMode
	}
	return fileMode
}

// get downloads blob hex, at most size bytes (a file's size, or the most
// a part may take), from the sibling URL of the artifact's into dst, and
// checks its sha256: a child with other bytes, or more, is a checksum
// failure, whatever its Content-Length said.
func (a *assembly) get(ctx context.Context, hexDigest string, size int64, dst io.Writer) error {
	u := sibling(a.t.URL, hexDigest)
	where := u.Redacted()
	body, err := get(ctx, a.client, u.String(), where, "", math.MaxInt64)
	if err != nil {
		return err
	}
	defer body.Close()
	h := sha256.New()
	r := &countedBody{ctx: ctx, r: body, where: where, a: a}
	n, err := io.Copy(io.MultiWriter(dst, h), io.LimitReader(r, size+1))
	if err != nil {
		return extractError(err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != hexDigest || n > size {
		return newError(refresh.ReasonChecksum, fmt.Errorf("GET %s: %d bytes with sha256 %s, want %s", where, n, sum, hexDigest))
	}
	return nil
}

// sibling is u with its last path segment replaced by hex: where the
// store, and any server of delta releases, serves the root's children.
func sibling(u *url.URL, hex string) *url.URL {
	s := *u
	s.Path = s.Path[:strings.LastIndexByte(s.Path, '/')+1] + hex
	if s.RawPath != "" {
		s.RawPath = s.RawPath[:strings.LastIndexByte(s.RawPath, '/')+1] + hex
	}
	return &s
}

// countedBody counts what it reads into its assembly's received, against
// Limits.MaxBytes, and stops when ctx ends.
type countedBody struct {
	ctx   context.Context
	r     io.Reader
	where string
	a     *assembly
}

func (c *countedBody) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, downloadError(c.ctx, c.where, c.ctx.Err())
	}
	n, err := c.r.Read(p)
	if c.a.received.Add(int64(n)) > c.a.lim.MaxBytes {
		return n, newError(refresh.ReasonSizeLimit, fmt.Errorf("GET %s: the downloads are over the limit of %d bytes", c.where, c.a.lim.MaxBytes))
	}
	if err != nil && err != io.EOF {
		return n, downloadError(c.ctx, c.where, err)
	}
	return n, err
}

// parallel runs do for 0 to n-1, parallelGets at once, and returns the
// first error, on which it cancels the rest.
func parallel(ctx context.Context, n int, do func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range min(parallelGets, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				if err := do(ctx, i); err != nil {
					once.Do(func() { first = err; cancel(err) })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return newError(refresh.ReasonDownload, fmt.Errorf("stopped: %w", context.Cause(ctx)))
	}
	return first
}
