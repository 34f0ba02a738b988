// Package pack turns a directory into the artifact the fetcher installs: a
// gzipped tar whose bytes depend only on the tree's paths, contents and
// executable bits, so that the same tree always has the same digest and
// pushing an unchanged tree is a no-op (H2).
package pack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/digest"
)

// Artifact is a packed tree.
type Artifact struct {
	// Data is the .tar.gz.
	Data []byte
	// Digest is "sha256:<hex>" of Data, the value of aether.dev/digest.
	Digest string
	// Files counts the regular files packed.
	Files int
	// Bytes is the total size of those files, before compression.
	Bytes int64
	// Packed lists the regular files packed, in order, and Left what the
	// ignore rules left out and why (a directory stands for everything in
	// it), for `kubectl devhot push --dry-run`.
	Packed []File
	Left   []Left
}

// File is one packed file.
type File struct {
	Path string
	Size int64
}

// Left is one path left out of an artifact.
type Left struct {
	Path  string
	IsDir bool
	Verdict
}

// Secrets lists the paths left out because they look like secrets.
func (a *Artifact) Secrets() []string { return secrets(a.Left) }

func secrets(left []Left) []string {
	var out []string
	for _, l := range left {
		if l.Secret {
			out = append(out, l.Path)
		}
	}
	return out
}

// Hex returns the digest without its "sha256:" prefix.
func (a *Artifact) Hex() string { return strings.TrimPrefix(a.Digest, digest.Prefix) }

// epoch is every entry's mtime: real mtimes would change the digest of a
// tree whose contents did not change (a checkout, a touch, a copy).
var epoch = time.Unix(0, 0)

// Dir packs dir. Entries are written in lexical order, with mtime, owner
// and group fixed, file modes reduced to 0644 or 0755, and a gzip header
// without name or time. Files that the ignore rules (LoadIgnore: the
// .gitignore files, .devhotignore and the secret patterns) exclude are
// left out;
// any other entry that is not a regular file or a directory (a symlink, a
// socket, a device) is refused, because the fetcher refuses it too, and
// it is better to hear so before an upload than from every pod after it.
func Dir(dir string, o Options) (*Artifact, error) {
	var buf bytes.Buffer
	// The zero gzip.Header has no name and no mtime.
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	a := &Artifact{}
	a.Left, err = walk(dir, o, func(path, rel string, isDir bool) error {
		if isDir {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, ModTime: epoch})
		}
		return a.addFile(tw, path, rel)
	})
	if err != nil {
		return nil, err
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	a.Data = buf.Bytes()
	a.Digest = digest.Of(a.Data)
	return a, nil
}

// TreeFile is one regular file that Dir would pack, as Walk finds it.
type TreeFile struct {
	// Path is slash-separated, relative to the tree's root.
	Path string
	// Abs is where the file is.
	Abs string
	// Exec is whether any executable bit is set: the file is packed 0755.
	Exec bool
	// Size and ModTime are the file's as Walk saw them.
	Size    int64
	ModTime time.Time
}

// Tree is what Dir would pack, without packing it: for a delta release,
// which hashes each file instead (docs/delta.md).
type Tree struct {
	// Files are the regular files, in lexical order of Path.
	Files []TreeFile
	// Left is what the ignore rules left out, as Artifact.Left.
	Left []Left
}

// Secrets lists the paths left out because they look like secrets.
func (t *Tree) Secrets() []string { return secrets(t.Left) }

// Walk lists what Dir would pack from dir, under the same rules, but only
// the regular files: a delta release has no directory entries.
func Walk(dir string, o Options) (*Tree, error) {
	t := &Tree{}
	var err error
	t.Left, err = walk(dir, o, func(path, rel string, isDir bool) error {
		if isDir {
			return nil
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		t.Files = append(t.Files, TreeFile{Path: rel, Abs: path, Exec: fi.Mode().Perm()&0o111 != 0, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// walk calls visit for every directory and regular file under dir that
// the ignore rules and o keep, in lexical order, and returns what they
// left out. Any other entry is an error.
func walk(dir string, o Options, visit func(path, rel string, isDir bool) error) ([]Left, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("pack %s: not a directory", dir)
	}
	ign, err := LoadIgnore(root, o)
	if err != nil {
		return nil, err
	}
	var left []Left
	// WalkDir visits each directory's entries sorted by name, whatever
	// order the file system keeps them in.
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if len(o.Only) > 0 && !only(o.Only, rel) {
			switch {
			case d.IsDir() && onTheWay(o.Only, rel):
				return visit(path, rel, true)
			case d.IsDir():
				return filepath.SkipDir
			case rel != "package.json" || !d.Type().IsRegular():
				return nil
			}
		}
		if v := ign.Check(rel, d.IsDir()); v.Out {
			left = append(left, Left{Path: rel, IsDir: d.IsDir(), Verdict: v})
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch t := d.Type(); {
		case t.IsDir():
			return visit(path, rel, true)
		case t.IsRegular():
			return visit(path, rel, false)
		case t&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			return fmt.Errorf("%s is a symlink (to %q): the fetcher refuses links in an artifact (reason unsafe_path); copy the file in its place or list it in %s", rel, target, IgnoreFile)
		default:
			return fmt.Errorf("%s is a %s, not a regular file or directory: the fetcher refuses it (reason unsupported_entry); list it in %s", rel, t.Type(), IgnoreFile)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	for _, p := range o.Only {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
			return nil, fmt.Errorf("pack %s: %s, which is to be packed, does not exist (did the build make it?)", dir, p)
		}
	}
	return left, nil
}

// only reports whether rel is one of paths or inside one.
func only(paths []string, rel string) bool {
	for _, p := range paths {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}

// onTheWay reports whether the directory rel leads to one of paths.
func onTheWay(paths []string, rel string) bool {
	for _, p := range paths {
		if strings.HasPrefix(p, rel+"/") {
			return true
		}
	}
	return false
}

// addFile reads the whole file before writing its header, so that a file
// being saved while it is packed cannot break the archive's sizes.
func (a *Artifact) addFile(tw *tar.Writer, path, rel string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	mode := int64(0o644)
	if fi.Mode().Perm()&0o111 != 0 {
		mode = 0o755
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Size: int64(len(data)), Mode: mode, ModTime: epoch}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	a.Files++
	a.Bytes += int64(len(data))
	a.Packed = append(a.Packed, File{Path: rel, Size: int64(len(data))})
	return nil
}
