package store

import (
	"fmt"
	"strings"

	"github.com/aether-dev/aether-devhot/pkg/digest"
)

// BlobPathPrefix is where blobs live; the rest of the path is the
// blob's sha256 in 64 lowercase hex digits.
const BlobPathPrefix = "/v1/blobs/sha256/"

// BlobPath returns the path of the blob whose sha256 is hex.
func BlobPath(hex string) string { return BlobPathPrefix + hex }

// ParseBlobPath returns the hex digest named by an HTTP request path. It
// accepts only BlobPathPrefix followed by exactly 64 lowercase hex digits,
// so that the digest can be used as a file name as it is.
func ParseBlobPath(path string) (string, error) {
	hex, ok := strings.CutPrefix(path, BlobPathPrefix)
	if !ok {
		return "", fmt.Errorf("path %q is not under %s", path, BlobPathPrefix)
	}
	if !digest.IsHex(hex) {
		return "", fmt.Errorf("path %q: want %s<64 lowercase hex digits>", path, BlobPathPrefix)
	}
	return hex, nil
}
