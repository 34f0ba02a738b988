// Package digest is the one form of an artifact digest that every part of
// aether-devhot reads or writes: the aether.dev/digest annotation's
// "sha256:<64 lowercase hex>", whose hex part also names a release
// directory and a store blob.
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Prefix is the only algorithm a digest may name.
const Prefix = "sha256:"

// Of is the digest of b.
func Of(b []byte) string { return Prefix + HexOf(b) }

// HexOf is the sha256 of b in 64 lowercase hex digits: a digest without
// its Prefix, as blobs and release directories are named.
func HexOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// IsHex reports whether s is a sha256 in 64 lowercase hex digits.
func IsHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Valid reports whether d is Prefix followed by 64 lowercase hex digits.
func Valid(d string) bool {
	h, ok := strings.CutPrefix(d, Prefix)
	return ok && IsHex(h)
}
