package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"time"
)

// Entry is one tar entry of a hand-built artifact, written exactly as
// given, however malicious: unit tests of the extractor build hostile
// archives from these.
type Entry struct {
	Header tar.Header
	Body   []byte
}

// File is a regular file entry with mode 0644.
func File(name, body string) Entry {
	return Entry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}, []byte(body)}
}

// Dir is a directory entry with mode 0755.
func Dir(name string) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}

// Special is an entry of type typ (a link, device or pipe) with no body.
func Special(name string, typ byte, link string) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: typ, Linkname: link, Mode: 0o644}}
}

// Build writes entries, in order, into a .tar.gz with a fixed mtime.
func Build(entries ...Entry) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := e.Header
		hdr.ModTime = time.Unix(1700000000, 0)
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, fmt.Errorf("tar header %q: %w", hdr.Name, err)
		}
		if _, err := tw.Write(e.Body); err != nil {
			return nil, fmt.Errorf("tar body %q: %w", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
