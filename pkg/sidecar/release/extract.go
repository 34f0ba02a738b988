package release

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// extractor writes a tar.gz stream into an os.Root, which refuses any path
// that would resolve outside it; the checks here come first so that such
// entries get a precise reason instead of a generic error.
type extractor struct {
	root       *os.Root
	lim        Limits
	compressed *meter
	// inflated counts the uncompressed tar stream, headers included.
	inflated int64
	entries  int
	files    int
	bytes    int64
	dirs     map[string]bool
	buf      []byte
}

func newExtractor(root *os.Root, lim Limits, compressed *meter) *extractor {
	return &extractor{
		root:       root,
		lim:        lim,
		compressed: compressed,
		dirs:       map[string]bool{".": true},
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
// anything else a broken archive.
func extractError(err error) error {
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	return newError(refresh.ReasonExtract, err)
}

func (x *extractor) entry(r io.Reader, hdr *tar.Header) error {
	x.entries++
	if x.entries > x.lim.MaxEntries {
		return newError(refresh.ReasonSizeLimit, fmt.Errorf("archive has more than %d entries", x.lim.MaxEntries))
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // metadata for the entries that follow; nothing to write
	}
	name, err := entryName(hdr.Name)
	if err != nil {
		return newError(refresh.ReasonUnsafePath, err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.mkdirAll(name)
	case tar.TypeReg:
		for k := range hdr.PAXRecords {
			// Sparse files expand beyond what the stream carries.
			if strings.HasPrefix(k, "GNU.sparse.") {
				return newError(refresh.ReasonUnsupportedEntry, fmt.Errorf("entry %q is a sparse file", hdr.Name))
			}
		}
		if name == "." {
			return newError(refresh.ReasonUnsafePath, fmt.Errorf("entry %q names the release root as a file", hdr.Name))
		}
		return x.writeFile(name, r, hdr)
	case tar.TypeSymlink, tar.TypeLink:
		return newError(refresh.ReasonUnsafePath, fmt.Errorf("entry %q links to %q; only regular files and directories are allowed", hdr.Name, hdr.Linkname))
	default:
		return newError(refresh.ReasonUnsupportedEntry, fmt.Errorf("entry %q has type %q; only regular files and directories are allowed", hdr.Name, hdr.Typeflag))
	}
}

// entryName returns the clean relative path of a tar entry, refusing
// absolute paths and any ".." component outright rather than resolving it.
func entryName(name string) (string, error) {
	if name == "" {
		return "", errors.New("entry with an empty name")
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("entry %q has an absolute path", name)
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("entry %q climbs out with ..", name)
		}
	}
	return path.Clean(name), nil
}

// mkdirAll creates dir and its parents with mode 0755 whatever the umask,
// because the app may run under another uid.
func (x *extractor) mkdirAll(dir string) error {
	if x.dirs[dir] {
		return nil
	}
	if err := x.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	if err := x.root.Mkdir(dir, dirMode); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return newError(refresh.ReasonExtract, err)
		}
		if fi, err := x.root.Lstat(dir); err != nil || !fi.IsDir() {
			return newError(refresh.ReasonExtract, fmt.Errorf("entry %q is both a file and a directory", dir))
		}
	}
	if err := x.root.Chmod(dir, dirMode); err != nil {
		return newError(refresh.ReasonExtract, err)
	}
	x.dirs[dir] = true
	return nil
}

func (x *extractor) writeFile(name string, r io.Reader, hdr *tar.Header) error {
	if hdr.Size > x.lim.MaxBytes-x.bytes {
		return newError(refresh.ReasonSizeLimit, fmt.Errorf("extracted files are over the limit of %d bytes at %q", x.lim.MaxBytes, hdr.Name))
	}
	if err := x.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	mode := fileMode
	if hdr.Mode&0o111 != 0 {
		mode = execMode
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return newError(refresh.ReasonExtract, err)
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
// gzip bomb is stopped long before it fills the volume.
type inflater struct {
	x *extractor
	r io.Reader
}

func (u *inflater) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	x := u.x
	x.inflated += int64(n)
	if x.inflated > x.lim.MaxBytes {
		return n, newError(refresh.ReasonSizeLimit, fmt.Errorf("uncompressed artifact is over the limit of %d bytes", x.lim.MaxBytes))
	}
	if x.inflated > ratioFloor && x.inflated/x.lim.MaxRatio > x.compressed.n {
		return n, newError(refresh.ReasonSizeLimit, fmt.Errorf("artifact expands more than %d times", x.lim.MaxRatio))
	}
	return n, err
}
