package store

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Handler serves the store over HTTP:
//
//	PUT  /v1/blobs/sha256/<hex>  201 stored, 200 already there, 400 digest mismatch, 413 over the cap
//	GET  /v1/blobs/sha256/<hex>  the blob (HEAD and ranges too), 404 if absent or evicted
//	GET  /healthz, /readyz       200
//
// A blob never changes, so GET answers may be cached forever.
func Handler(s *Store, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	mux.Handle("/v1/blobs/", &blobs{s: s, log: log})
	return mux
}

type blobs struct {
	s   *Store
	log *slog.Logger
}

func (b *blobs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := ParseBlobPath(r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		b.get(w, r, id)
	case http.MethodPut:
		b.put(w, r, id)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		http.Error(w, r.Method+" is not allowed on a blob", http.StatusMethodNotAllowed)
	}
}

func (b *blobs) get(w http.ResponseWriter, r *http.Request, id string) {
	f, err := b.s.Get(id)
	if errors.Is(err, ErrNotFound) {
		http.Error(w, "no blob sha256:"+id, http.StatusNotFound)
		return
	}
	if err != nil {
		b.log.Error("open blob", "digest", "sha256:"+id, "error", err)
		http.Error(w, "cannot open blob", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, "cannot open blob", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("ETag", `"sha256:`+id+`"`)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func (b *blobs) put(w http.ResponseWriter, r *http.Request, id string) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/") {
		http.Error(w, "Content-Type "+ct+": want application/gzip or application/octet-stream", http.StatusUnsupportedMediaType)
		return
	}
	created, err := b.s.Put(id, r.Body, r.ContentLength)
	switch {
	case errors.Is(err, ErrDigestMismatch):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, ErrTooLarge):
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
	case err != nil:
		b.log.Error("store blob", "digest", "sha256:"+id, "error", err)
		http.Error(w, "cannot store blob: "+err.Error(), http.StatusInternalServerError)
	case created:
		b.log.Info("stored", "digest", "sha256:"+id, "bytes", r.ContentLength, "total_bytes", b.s.Total())
		w.Header().Set("Location", BlobPath(id))
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusOK)
	}
}
