package appimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Epoch is the modification time of every file in the layers this package
// writes, and the creation time of its images, so that the same content
// always makes the same digests (and PushApp's content tag is stable across
// checkouts and machines).
var Epoch = time.Unix(0, 0).UTC()

// Entry is one file, directory or symlink of a layer.
type Entry struct {
	// Path is absolute in the image.
	Path string
	// Mode holds the permission bits (sticky, setuid and setgid included)
	// and fs.ModeDir or fs.ModeSymlink; neither means a regular file.
	Mode     fs.FileMode
	UID, GID int
	// Data is a regular file's content.
	Data []byte
	// Link is a symlink's target.
	Link string
}

// IsDir reports whether e is a directory.
func (e Entry) IsDir() bool { return e.Mode&fs.ModeDir != 0 }

// IsSymlink reports whether e is a symlink.
func (e Entry) IsSymlink() bool { return e.Mode&fs.ModeSymlink != 0 }

// Dir is a directory entry.
func Dir(p string, perm fs.FileMode, uid, gid int) Entry {
	return Entry{Path: p, Mode: fs.ModeDir | perm, UID: uid, GID: gid}
}

// File is a regular file entry.
func File(p string, perm fs.FileMode, data []byte) Entry {
	return Entry{Path: p, Mode: perm, Data: data}
}

// Symlink is a symlink entry at p pointing at target.
func Symlink(p, target string) Entry {
	return Entry{Path: p, Mode: fs.ModeSymlink | 0o777, Link: target}
}

// HostFile reads the machine's file src (following symlinks) into an entry
// at p, with src's permission bits.
func HostFile(src, p string) (Entry, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return Entry{}, err
	}
	st, err := os.Stat(src)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Path: p, Mode: st.Mode().Perm(), Data: b}, nil
}

// HostTree reads the machine's directory tree src into entries under p,
// keeping symlinks as symlinks and the permission bits of every file.
func HostTree(src, p string) ([]Entry, error) {
	var out []Entry
	err := walkHost(src, func(rel string, info fs.FileInfo, data []byte, link string) {
		at := path.Join(p, rel)
		switch {
		case info.IsDir():
			out = append(out, Dir(at, info.Mode().Perm(), 0, 0))
		case link != "":
			out = append(out, Symlink(at, link))
		default:
			out = append(out, Entry{Path: at, Mode: info.Mode().Perm(), Data: data})
		}
	})
	return out, err
}

// walkHost calls f for src and everything under it, with the slash path
// relative to src ("." for src), reading regular files and symlinks.
func walkHost(src string, f func(rel string, info fs.FileInfo, data []byte, link string)) error {
	return walkDir(os.DirFS(src), src, f)
}

func walkDir(fsys fs.FS, src string, f func(rel string, info fs.FileInfo, data []byte, link string)) error {
	return fs.WalkDir(fsys, ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var data []byte
		var link string
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(path.Join(src, rel)); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if data, err = os.ReadFile(path.Join(src, rel)); err != nil {
				return err
			}
		case !info.IsDir():
			return fmt.Errorf("%s: not a regular file, directory or symlink", path.Join(src, rel))
		}
		f(rel, info, data, link)
		return nil
	})
}

// tarMode is e's mode as a tar header's Mode.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// fileMode is the inverse of tarMode for a header.
func fileMode(h *tar.Header) fs.FileMode {
	m := fs.FileMode(h.Mode & 0o777)
	if h.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if h.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if h.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch h.Typeflag {
	case tar.TypeDir:
		m |= fs.ModeDir
	case tar.TypeSymlink:
		m |= fs.ModeSymlink
	}
	return m
}

// withParents returns entries, the last of each path winning, with every
// missing parent directory added (root's, 0755), sorted by path so that a
// directory comes before what it holds.
func withParents(entries []Entry) []Entry {
	byPath := map[string]Entry{}
	for _, e := range entries {
		e.Path = path.Clean("/" + e.Path)
		byPath[e.Path] = e
	}
	for _, e := range byPath {
		for d := path.Dir(e.Path); d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = Dir(d, 0o755, 0, 0)
			}
		}
	}
	delete(byPath, "/")
	out := make([]Entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// writeTar writes entries (with their parents) as a tar, names relative to
// the root, every time Epoch.
func writeTar(w io.Writer, entries []Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range withParents(entries) {
		h := &tar.Header{Name: strings.TrimPrefix(e.Path, "/"), Mode: tarMode(e.Mode), Uid: e.UID, Gid: e.GID,
			ModTime: Epoch, Typeflag: tar.TypeReg, Size: int64(len(e.Data)), Format: tar.FormatPAX}
		switch {
		case e.IsDir():
			h.Name += "/"
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.IsSymlink():
			h.Typeflag, h.Size, h.Linkname = tar.TypeSymlink, 0, e.Link
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.Data); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// readTar reads a tar that writeTar wrote (or any layer without hard links
// or whiteouts) back into entries.
func readTar(r io.Reader) ([]Entry, error) {
	tr := tar.NewReader(r)
	var out []Entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		e := Entry{Path: path.Clean("/" + h.Name), Mode: fileMode(h), UID: h.Uid, GID: h.Gid, Link: h.Linkname}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
		case tar.TypeLink:
			// A hard link becomes a copy of its target, read earlier.
			for i := len(out) - 1; i >= 0; i-- {
				if out[i].Path == path.Clean("/"+h.Linkname) {
					e.Data, e.Mode, e.Link = out[i].Data, out[i].Mode, ""
					break
				}
			}
		default:
			continue
		}
		if h.Typeflag == tar.TypeReg {
			if e.Data, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
	}
}

// Layer is a gzip layer of entries and their parent directories, in path
// order, every time Epoch: the same entries make the same digest. The
// compressed bytes are computed once.
func Layer(entries []Entry) (v1.Layer, error) {
	var buf bytes.Buffer
	if err := writeTar(&buf, entries); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithCompressedCaching)
}

// LayerEntries reads a layer back into entries (whiteouts are skipped).
func LayerEntries(l v1.Layer) ([]Entry, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readTar(rc)
}
