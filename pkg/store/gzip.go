package store

import "fmt"

// gzipHeaderLen is the fixed part of a gzip member header (RFC 1952 2.3):
// ID1 ID2 CM FLG MTIME(4) XFL OS.
const gzipHeaderLen = 10

// checkGzipHeader accepts what starts a gzip member as compress/gzip reads
// it: the magic 1f 8b, deflate (8), and no reserved flag bits. It checks
// the header only: inflating a whole upload to check it would let one
// small body cost the store minutes of CPU, and the fetcher verifies and
// extracts the archive anyway.
func checkGzipHeader(b []byte) error {
	if len(b) < gzipHeaderLen || b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 || b[3]&0xe0 != 0 {
		n := min(len(b), 4)
		return fmt.Errorf("%w: the body starts % x, not a gzip header (1f 8b 08)", ErrNotGzip, b[:n])
	}
	return nil
}
