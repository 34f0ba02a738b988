package appimage

import (
	"archive/tar"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// baseIndex is what a build needs to know of a base image's filesystem
// without reading it again: its directories (for the parents of new files)
// and its /etc/passwd and /etc/group (for USER and --chown). It is cached
// in memory and on disk by the image's digest.
type baseIndex struct {
	Dirs   map[string]Entry
	Passwd []byte
	Group  []byte
}

func (b *Builder) index(img v1.Image) (*baseIndex, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if idx, ok := b.indexes[digest]; ok {
		return idx, nil
	}
	file := filepath.Join(b.cacheDir(), "base", digest.Hex+".json")
	idx := &baseIndex{}
	if raw, err := os.ReadFile(file); err == nil && json.Unmarshal(raw, idx) == nil {
		b.remember(digest, idx)
		return idx, nil
	}
	idx, err = readIndex(img)
	if err != nil {
		return nil, err
	}
	if raw, err := json.Marshal(idx); err == nil {
		if os.MkdirAll(filepath.Dir(file), 0o755) == nil {
			tmp := file + ".tmp"
			if os.WriteFile(tmp, raw, 0o644) == nil {
				_ = os.Rename(tmp, file)
			}
		}
	}
	b.remember(digest, idx)
	return idx, nil
}

func (b *Builder) remember(d v1.Hash, idx *baseIndex) {
	if b.indexes == nil {
		b.indexes = map[v1.Hash]*baseIndex{}
	}
	b.indexes[d] = idx
}

// readIndex reads img's flattened filesystem once.
func readIndex(img v1.Image) (*baseIndex, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	idx := &baseIndex{Dirs: map[string]Entry{}}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return idx, nil
		}
		if err != nil {
			return nil, err
		}
		p := path.Clean("/" + h.Name)
		switch {
		case h.Typeflag == tar.TypeDir:
			idx.Dirs[p] = Entry{Path: p, Mode: fileMode(h) | fs.ModeDir, UID: h.Uid, GID: h.Gid}
		case p == "/etc/passwd" && h.Typeflag == tar.TypeReg:
			if idx.Passwd, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		case p == "/etc/group" && h.Typeflag == tar.TypeReg:
			if idx.Group, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
	}
}
