package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"

	"github.com/aether-dev/aether-devhot/pkg/digest"
)

// Incompressible builds a .tar.gz of size bytes of pseudo-random data in
// files of fileSize bytes (the last one shorter), for memory and throughput
// figures where compression must not shrink the work. The gzip stream is
// stored, not deflated: random data would not shrink anyway, and building
// 100 MiB takes well under a second this way.
func Incompressible(size, fileSize int64, seed uint64) (Artifact, error) {
	var buf bytes.Buffer
	buf.Grow(int(size + size/100 + 1<<20))
	gz, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		return Artifact{}, err
	}
	tw := tar.NewWriter(gz)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	chunk := make([]byte, fileSize)
	for i, left := 0, size; left > 0; i++ {
		n := min(fileSize, left)
		_, _ = rng.Read(chunk[:n])
		hdr := &tar.Header{Name: fmt.Sprintf("blob/%04d.bin", i), Mode: 0o644, Size: n, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return Artifact{}, err
		}
		if _, err := tw.Write(chunk[:n]); err != nil {
			return Artifact{}, err
		}
		left -= n
	}
	if err := tw.Close(); err != nil {
		return Artifact{}, err
	}
	if err := gz.Close(); err != nil {
		return Artifact{}, err
	}
	return Artifact{Data: buf.Bytes(), Digest: digest.Of(buf.Bytes())}, nil
}
