package release

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// extractor writes a tar.gz stream into an os.Root, which refuses any path
// that would resolve outside it; the checks here come first so that such
// entries get a precise reason instead of a generic error.
//
// It keeps no name but the last directory it made, so that its memory is
// the same whatever the archive's names, and it looks at ctx before every
// entry, every directory and every read, so that a newer digest or the
// download's deadline stops it at once.
type extractor struct {
	ctx        context.Context
	root       *os.Root
	lim        Limits
	compressed *meter
	// inflated counts the uncompressed tar stream, headers included.
	inflated int64
	// used is what the release takes on disk, as Limits.MaxBytes counts it.
	used    int64
	entries int
	files   int
	bytes   int64
	// lastDir is the last directory made or found, "." at first: a file's
	// parent is usually the previous file's, and every ancestor of lastDir
	// exists too.
	lastDir string
	buf     []byte
}

func newExtractor(ctx context.Context, root *os.Root, lim Limits, compressed *meter) *extractor {
	return &extractor{
		ctx:        ctx,
		root:       root,
		lim:        lim,
		compressed: compressed,
		lastDir:    ".",
		buf:        make([]byte, 128<<10),
	}
}

// extract reads the whole gzip stream from src, so that its CRC is checked,
// and writes every entry of the tar inside it.
func (x *extractor) extract(src io.Reader) error {
	zr, err := gzip.NewReader(src)
	if err != nil {
		return extractError(err)
	}
	ur := &inflater{x: x, r: zr}
	tr := tar.NewReader(ur)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return extractError(err)
		}
		if err := x.entry(tr, hdr); err != nil {
			return err
		}
	}
	if _, err := io.CopyBuffer(io.Discard, ur, x.buf); err != nil {
		return extractError(err)
	}
	return nil
}

// extractError keeps the reason of an error from the meters and calls
// anything else a broken archive, or a full volume.
func extractError(err error) error {
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &Error{Reason: refresh.ReasonSizeLimit, Err: err, volumeFull: true}
	}
	return newError(refresh.ReasonExtract, err)
}

// stopped returns the cancellation as an error if ctx has ended.
func (x *extractor) stopped() error {
	if x.ctx.Err() == nil {
		return nil
	}
	return newError(refresh.ReasonDownload, fmt.Errorf("extraction stopped: %w", context.Cause(x.ctx)))
}

// charge counts n bytes on disk for name against MaxBytes.
func (x *extractor) charge(n int64, name string) error {
	x.used += n
	if x.used > x.lim.MaxBytes {
		return newError(refresh.ReasonSizeLimit, fmt.Errorf(
			"the release would take more than %d bytes on disk at %q (every file counts its size rounded up to %d bytes, every directory and every other entry %d)",
			x.lim.MaxBytes, name, BlockSize, BlockSize))
	}
	return nil
}

// blocks rounds a file's size up to whole blocks, one at least.
func blocks(size int64) int64 {
	return max(1, (size+BlockSize-1)/BlockSize) * BlockSize
}

func (x *extractor) entry(r io.Reader, hdr *tar.Header) error {
	if err := x.stopped(); err != nil {
		return err
	}
	x.entries++
	if x.entries > x.lim.MaxEntries {
		return newError(refresh.ReasonSizeLimit, fmt.Errorf("archive has more than %d entries", x.lim.MaxEntries))
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		// Metadata for the entries that follow; nothing to write.
		return x.charge(BlockSize, hdr.Name)
	}
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		made, err := x.mkdirAll(name)
		if err == nil && made == 0 {
			// It was there already; the entry still counts.
			err = x.charge(BlockSize, name)
		}
		return err
	case tar.TypeReg:
		for k := range hdr.PAXRecords {
			// Sparse files expand beyond what the stream carries.
			if strings.HasPrefix(k, "GNU.sparse.") {
				return newError(refresh.ReasonUnsupportedEntry, fmt.Errorf("entry %q is a sparse file", name))
			}
		}
		if name == "." {
			return newError(refresh.ReasonUnsafePath, fmt.Errorf("entry %q names the release root as a file", hdr.Name))
		}
		return x.writeFile(name, r, hdr)
	case tar.TypeSymlink, tar.TypeLink:
		return newError(refresh.ReasonUnsafePath, fmt.Errorf("entry %q links to %q; only regular files and directories are allowed", name, hdr.Linkname))
	default:
		return newError(refresh.ReasonUnsupportedEntry, fmt.Errorf("entry %q has type %q; only regular files and directories are allowed", name, hdr.Typeflag))
	}
}

// entryName returns the clean relative path of a tar entry. It refuses
// absolute paths and any ".." component outright rather than resolving
// them, and paths over the caps on length and depth. A name quoted in an
// error is cut to its first 64 bytes.
func entryName(name string) (string, error) {
	if name == "" {
		return "", newError(refresh.ReasonUnsafePath, errors.New("entry with an empty name"))
	}
	if len(name) > MaxPathBytes {
		return "", newError(refresh.ReasonSizeLimit, fmt.Errorf("entry %q… has a path of %d bytes, over the limit of %d", quoteStart(name), len(name), MaxPathBytes))
	}
	if strings.HasPrefix(name, "/") {
		return "", newError(refresh.ReasonUnsafePath, fmt.Errorf("entry %q has an absolute path", name))
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == ".." {
			return "", newError(refresh.ReasonUnsafePath, fmt.Errorf("entry %q climbs out with ..", name))
		}
		if len(part) > MaxNameBytes {
			return "", newError(refresh.ReasonSizeLimit, fmt.Errorf("entry %q… has a name of %d bytes, over the limit of %d", quoteStart(name), len(part), MaxNameBytes))
		}
	}
	clean := path.Clean(name)
	if depth := strings.Count(clean, "/") + 1; depth > MaxPathDepth {
		return "", newError(refresh.ReasonSizeLimit, fmt.Errorf("entry %q… is %d levels deep, over the limit of %d", quoteStart(name), depth, MaxPathDepth))
	}
	return clean, nil
}

// quoteStart is the start of a long name, for an error message.
func quoteStart(name string) string {
	if len(name) <= 64 {
		return name
	}
	return strings.ToValidUTF8(name[:64], "")
}

// mkdirAll creates dir and its missing parents with mode 0755 whatever the
// umask, because the app may run under another uid, and returns how many it
// made. Each costs a block. It tries dir first and climbs only as far as a
// parent is missing, so that it costs one call where the parent exists.
func (x *extractor) mkdirAll(dir string) (int, error) {
	if dir == x.lastDir || strings.HasPrefix(x.lastDir, dir+"/") {
		return 0, nil
	}
	made, err := x.mkdir(dir)
	if err == nil {
		x.lastDir = dir
	}
	return made, err
}

func (x *extractor) mkdir(dir string) (int, error) {
	if dir == "." {
		return 0, nil
	}
	if err := x.stopped(); err != nil {
		return 0, err
	}
	err := x.root.Mkdir(dir, dirMode)
	made := 0
	if errors.Is(err, fs.ErrNotExist) {
		if made, err = x.mkdir(path.Dir(dir)); err != nil {
			return made, err
		}
		err = x.root.Mkdir(dir, dirMode)
	}
	switch {
	case err == nil:
		if err := x.charge(BlockSize, dir); err != nil {
			return made, err
		}
		if err := x.root.Chmod(dir, dirMode); err != nil {
			return made, extractError(err)
		}
		return made + 1, nil
	case errors.Is(err, fs.ErrExist):
		if fi, err := x.root.Lstat(dir); err != nil || !fi.IsDir() {
			return made, newError(refresh.ReasonExtract, fmt.Errorf("entry %q is both a file and a directory", dir))
		}
		return made, nil
	case errors.Is(err, syscall.ENOTDIR):
		return made, newError(refresh.ReasonExtract, fmt.Errorf("entry %q is under a file, not a directory", dir))
	default:
		return made, extractError(err)
	}
}

func (x *extractor) writeFile(name string, r io.Reader, hdr *tar.Header) error {
	if hdr.Size > x.lim.MaxBytes-x.bytes {
		return newError(refresh.ReasonSizeLimit, fmt.Errorf("extracted files are over the limit of %d bytes at %q", x.lim.MaxBytes, name))
	}
	if err := x.charge(blocks(hdr.Size), name); err != nil {
		return err
	}
	if _, err := x.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	mode := fileMode
	if hdr.Mode&0o111 != 0 {
		mode = execMode
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if errors.Is(err, syscall.ENOTDIR) {
		return newError(refresh.ReasonExtract, fmt.Errorf("entry %q is under a file, not a directory", name))
	}
	if err != nil {
		return extractError(err)
	}
	// Hide f's ReadFrom, which would allocate its own buffer per file.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, r, x.buf)
	x.bytes += n
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return extractError(err)
	}
	x.files++
	return nil
}

// inflater counts and caps the uncompressed stream: its size against
// MaxBytes and its ratio to the compressed bytes against MaxRatio, so that a
// gzip bomb is stopped long before it fills the volume. It also stops the
// extraction once ctx ends, whatever the source is.
type inflater struct {
	x *extractor
	r io.Reader
}

func (u *inflater) Read(p []byte) (int, error) {
	x := u.x
	if err := x.stopped(); err != nil {
		return 0, err
	}
	n, err := u.r.Read(p)
	x.inflated += int64(n)
	if x.inflated > x.lim.MaxBytes {
		return n, newError(refresh.ReasonSizeLimit, fmt.Errorf("uncompressed artifact is over the limit of %d bytes", x.lim.MaxBytes))
	}
	if x.inflated > ratioFloor && x.inflated/x.lim.MaxRatio > x.compressed.n {
		return n, newError(refresh.ReasonSizeLimit, fmt.Errorf("artifact expands more than %d times", x.lim.MaxRatio))
	}
	return n, err
}
