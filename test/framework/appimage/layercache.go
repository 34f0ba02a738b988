package appimage

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// CachedLayer is Layer with its gzip bytes kept in dir, by the layer's
// diff ID: the same entries are compressed once, not at every call (the
// cluster's bases hold node twice and npm, about 220 MB of tar). The
// uncompressed tar stays in memory.
func CachedLayer(entries []Entry, dir string) (v1.Layer, error) {
	var buf bytes.Buffer
	if err := writeTar(&buf, entries); err != nil {
		return nil, err
	}
	tar := buf.Bytes()
	sum := sha256.Sum256(tar)
	l := &fileLayer{tar: tar, diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
	l.file = filepath.Join(dir, l.diffID.Hex+".gz")
	if err := l.load(); err == nil {
		return l, nil
	}
	if err := l.store(); err != nil {
		return nil, err
	}
	return l, nil
}

// fileLayer is a gzip layer whose compressed bytes are a file.
type fileLayer struct {
	tar    []byte
	diffID v1.Hash
	digest v1.Hash
	size   int64
	file   string
}

// load reads the digest and size of an existing compressed file.
func (l *fileLayer) load() error {
	f, err := os.Open(l.file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	l.digest, l.size = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, n
	return nil
}

// store compresses the tar into the file, atomically.
func (l *fileLayer) store() error {
	if err := os.MkdirAll(filepath.Dir(l.file), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(l.file), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	counter := &countWriter{w: io.MultiWriter(tmp, h)}
	zw, err := gzip.NewWriterLevel(counter, gzip.BestSpeed)
	if err != nil {
		tmp.Close()
		return err
	}
	if _, err := zw.Write(l.tar); err != nil {
		tmp.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	l.digest, l.size = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, counter.n
	if err := os.Rename(tmp.Name(), l.file); err != nil {
		return fmt.Errorf("layer cache: %w", err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.file) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.tar)), nil
}
