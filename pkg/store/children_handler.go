package store

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/digest"
)

// missing answers GET BlobRef.MissingPath.
func (b *blobs) missing(w http.ResponseWriter, ref BlobRef) {
	m, err := b.s.Missing(ref.Namespace, ref.Hex)
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, "no root "+ref.String()+": PUT it first", http.StatusNotFound)
		return
	case errors.Is(err, ErrNotRoot):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		b.log.Error("missing", "blob", ref.String(), "error", err)
		http.Error(w, "cannot list what is missing", http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// children answers POST BlobRef.ChildrenPath: it stores each entry of the
// body's tar.gz as it arrives, in one upload slot, and stops at the first
// it cannot store.
func (b *blobs) children(w http.ResponseWriter, r *http.Request, ref BlobRef) {
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/gzip" {
		http.Error(w, "Content-Type "+ct+": want application/gzip, a .tar.gz of the root's parts and files", http.StatusUnsupportedMediaType)
		return
	}
	u, err := b.s.Children(ref.Namespace, ref.Hex)
	if err != nil {
		b.refuse(w, ref, err, "")
		return
	}
	defer u.Close()
	// A small body may inflate to many entries; the upload timeout bounds
	// the whole request, not only the reading of its body.
	var body io.Reader = r.Body
	if b.uploadTimeout > 0 {
		body = &deadlineReader{r: r.Body, deadline: time.Now().Add(b.uploadTimeout)}
	}
	zr, err := gzip.NewReader(body)
	if err != nil {
		b.refuseBody(w, ref, err)
		return
	}
	tr := tar.NewReader(zr)
	var done ChildrenStored
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.refuseBody(w, ref, err)
			return
		}
		what := fmt.Sprintf("entry %q", h.Name)
		switch {
		case h.Typeflag != tar.TypeReg:
			http.Error(w, what+": not a regular file", http.StatusBadRequest)
			return
		case !digest.IsHex(h.Name):
			http.Error(w, what+": want a name of 64 lowercase hex digits, the sha256 of its bytes", http.StatusBadRequest)
			return
		case seen[h.Name]:
			http.Error(w, what+": sent twice", http.StatusBadRequest)
			return
		}
		seen[h.Name] = true
		created, err := u.Put(h.Name, tr, h.Size)
		if err != nil {
			b.refuse(w, ref, err, what)
			return
		}
		if created {
			done.Stored++
			done.Bytes += h.Size
		}
	}
	b.log.Info("stored children", "root", ref.String(), "stored", done.Stored, "bytes", done.Bytes,
		"namespace_bytes", b.s.NamespaceTotal(ref.Namespace), "total_bytes", b.s.Total())
	writeJSON(w, http.StatusCreated, done)
}

// refuseBody answers a body that is not a .tar.gz, or stopped short.
func (b *blobs) refuseBody(w http.ResponseWriter, ref BlobRef, err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		b.refuse(w, ref, err, "")
		return
	}
	http.Error(w, "the body is not a .tar.gz of the root's parts and files: "+err.Error(), http.StatusBadRequest)
}

// deadlineReader fails with os.ErrDeadlineExceeded once its deadline has
// passed, as a connection past its read deadline does.
type deadlineReader struct {
	r        io.Reader
	deadline time.Time
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if time.Now().After(d.deadline) {
		return 0, os.ErrDeadlineExceeded
	}
	return d.r.Read(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
