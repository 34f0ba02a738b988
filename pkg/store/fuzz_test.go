package store

import (
	"strings"
	"testing"
)

// FuzzParseBlobPath: request paths are untrusted. Whatever the input,
// parsing must not panic, and an accepted digest must be safe to use as a
// file name and give back the same path.
func FuzzParseBlobPath(f *testing.F) {
	for _, s := range []string{
		BlobPath(strings.Repeat("a", 64)),
		BlobPath(strings.Repeat("A", 64)),
		BlobPath("../../etc/passwd"),
		BlobPath(strings.Repeat("a", 63) + "/"),
		"/v1/blobs/sha256/",
		"/v1/blobs/sha256/" + strings.Repeat("0", 65),
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		id, err := ParseBlobPath(path)
		if err != nil {
			if id != "" {
				t.Fatalf("error %v with id %q", err, id)
			}
			return
		}
		if len(id) != 64 || strings.ContainsAny(id, "/.\\\x00") || strings.ToLower(id) != id {
			t.Fatalf("accepted %q from %q", id, path)
		}
		if BlobPath(id) != path {
			t.Fatalf("%q parsed to %q, which gives back %q", path, id, BlobPath(id))
		}
	})
}
