package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/manifest"
)

// DefaultUploadTimeout bounds one upload from its first to its last byte:
// 512 MiB at 5 MiB/s, through the API server's service proxy.
const DefaultUploadTimeout = 2 * time.Minute

// retryAfterBusy is the Retry-After, in seconds, of a 503 when every upload
// slot is taken or Access is not ready yet.
const retryAfterBusy = "2"

// HandlerOption configures Handler.
type HandlerOption func(*blobs)

// WithUploadTimeout bounds how long one PUT may take to send its body
// (DefaultUploadTimeout); past it the upload is dropped with 408 and its
// slot and its bytes in tmp/ are freed.
func WithUploadTimeout(d time.Duration) HandlerOption {
	return func(b *blobs) { b.uploadTimeout = d }
}

// Handler serves the store over HTTP; a is asked before every blob is
// read or written:
//
//	PUT  /v1/namespaces/NS/deployments/NAME/blobs/sha256/HEX
//	     201 stored, 200 already there; 403 unless Deployment NS/NAME asks for
//	     HEX; 400 digest mismatch, or a delta release's root that does not
//	     parse; 413 over the cap; 415 neither gzip nor a root;
//	     507 over the namespace's quota or the store's cap with blobs in use;
//	     503 too many uploads in flight; 408 slower than the upload timeout
//	GET  same path, with Authorization: Bearer <token>: the blob (ranges too),
//	     404 if absent or evicted; 401 without an accepted token, 403 if its
//	     holder may not get Deployment NS/NAME
//	HEAD as GET; or, without a token, as PUT decides (so a pusher can skip an upload)
//	GET  same path + /missing, authorized as a PUT of the root HEX: what the
//	     delta release lacks, JSON Missing; 404 root not stored, 400 not a root
//	POST same path + /children, authorized as a PUT of the root HEX, with a
//	     .tar.gz of the root's parts and files each named by its sha256:
//	     201 JSON ChildrenStored; 403 an entry the root does not reference;
//	     400 an entry whose bytes lie or a part that does not parse; else as PUT
//	GET  /v1/blobs/sha256/HEX   410: the layout before blobs were kept per namespace
//	GET  /healthz               200
//	GET  /readyz                200 once a can decide, 503 before
//
// A blob never changes, so GET answers may be cached, privately, forever.
func Handler(s *Store, a Access, log *slog.Logger, opts ...HandlerOption) http.Handler {
	b := &blobs{s: s, a: a, log: log, uploadTimeout: DefaultUploadTimeout}
	for _, o := range opts {
		o(b)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.Ready() {
			http.Error(w, "not ready: the Deployments that decide uploads and pins are not read yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc(LegacyBlobPathPrefix, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "blobs are kept per namespace now, under "+blobPathPrefix+
			"<namespace>/deployments/<name>/blobs/sha256/<hex>: push again with kubectl devhot push", http.StatusGone)
	})
	mux.Handle(blobPathPrefix, b)
	return b.bounded(mux)
}

// bounded gives every request with a body the upload timeout to send it
// and closes its connection afterwards. Otherwise net/http would wait for
// up to 256 KiB of a refused or unread body, from a client that may never
// send it, before it answers.
func (b *blobs) bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
			if b.uploadTimeout > 0 {
				// Not every ResponseWriter supports it (httptest's
				// recorder does not); a real server's does.
				_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(b.uploadTimeout))
			}
		}
		next.ServeHTTP(w, r)
	})
}

type blobs struct {
	s             *Store
	a             Access
	log           *slog.Logger
	uploadTimeout time.Duration
}

func (b *blobs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ref, res, err := ParsePath(r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if allow := allowed[res]; !slices.Contains(strings.Split(allow, ", "), r.Method) {
		w.Header().Set("Allow", allow)
		http.Error(w, r.Method+" is not allowed here: "+allow, http.StatusMethodNotAllowed)
		return
	}
	if !b.a.Ready() {
		w.Header().Set("Retry-After", retryAfterBusy)
		http.Error(w, "the store is starting: it has not read the Deployments that decide access yet", http.StatusServiceUnavailable)
		return
	}
	if !b.authorize(w, r, ref, res) {
		return
	}
	switch {
	case res == ResourceMissing:
		b.missing(w, ref)
	case res == ResourceChildren:
		b.children(w, r, ref)
	case r.Method == http.MethodPut:
		b.put(w, r, ref)
	default:
		b.get(w, r, ref)
	}
}

// allowed are the methods of each Resource, as an Allow header says them.
var allowed = map[Resource]string{
	ResourceBlob:     "GET, HEAD, PUT",
	ResourceMissing:  "GET",
	ResourceChildren: "POST",
}

// authorize asks Access and answers the request when it says no or cannot
// tell. A GET of a blob needs a reader's token; a PUT needs the Deployment
// to ask for the digest; a HEAD is answered for either. The delta
// release's endpoints are the pusher's, authorized as a PUT of the root:
// the CLI comes through the API server's service proxy, which strips
// credentials.
func (b *blobs) authorize(w http.ResponseWriter, r *http.Request, ref BlobRef, res Resource) bool {
	token, hasToken := bearer(r)
	var err error
	switch {
	case res != ResourceBlob:
		err = b.a.AuthorizeUpload(r.Context(), ref)
	case hasToken && r.Method != http.MethodPut:
		err = b.a.AuthorizeRead(r.Context(), token, ref)
	case r.Method == http.MethodGet:
		err = Unauthorized("reading a blob needs a bearer token: the fetcher sends its projected service-account " +
			"token for the store (AETHER_STORE_URL, AETHER_STORE_TOKEN_FILE) to this store only")
	default:
		err = b.a.AuthorizeUpload(r.Context(), ref)
	}
	if err == nil {
		return true
	}
	if d, ok := asDenied(err); ok {
		if d.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aether-devhot-store"`)
		}
		b.log.Info("denied", "method", r.Method, "blob", ref.String(), "status", d.Status, "reason", d.Reason)
		http.Error(w, d.Reason, d.Status)
		return false
	}
	b.log.Error("cannot check access", "method", r.Method, "blob", ref.String(), "error", err)
	w.Header().Set("Retry-After", retryAfterBusy)
	http.Error(w, "cannot check access: "+err.Error(), http.StatusServiceUnavailable)
	return false
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

func (b *blobs) get(w http.ResponseWriter, r *http.Request, ref BlobRef) {
	f, err := b.s.Get(ref.Namespace, ref.Hex)
	if errors.Is(err, ErrNotFound) {
		http.Error(w, "no blob "+ref.String(), http.StatusNotFound)
		return
	}
	if err != nil {
		b.log.Error("open blob", "blob", ref.String(), "error", err)
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
	h.Set("Content-Type", contentType(f))
	h.Set("ETag", `"sha256:`+ref.Hex+`"`)
	// private: a shared cache would serve it without asking the store.
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func (b *blobs) put(w http.ResponseWriter, r *http.Request, ref BlobRef) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/") {
		http.Error(w, "Content-Type "+ct+": want application/gzip or application/octet-stream", http.StatusUnsupportedMediaType)
		return
	}
	created, err := b.s.Put(ref.Namespace, ref.Hex, r.Body, r.ContentLength)
	switch {
	case err != nil:
		b.refuse(w, ref, err, "")
	case created:
		b.log.Info("stored", "blob", ref.String(), "bytes", r.ContentLength, "namespace_bytes", b.s.NamespaceTotal(ref.Namespace), "total_bytes", b.s.Total())
		w.Header().Set("Location", ref.Path())
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// refuse answers an upload that failed with err, the message prefixed by
// what, if not empty.
func (b *blobs) refuse(w http.ResponseWriter, ref BlobRef, err error, what string) {
	msg := err.Error()
	if what != "" {
		msg = what + ": " + msg
	}
	switch {
	case errors.Is(err, ErrDigestMismatch), errors.Is(err, ErrBadManifest), errors.Is(err, ErrNotRoot), errors.Is(err, io.ErrUnexpectedEOF):
		http.Error(w, msg, http.StatusBadRequest)
	case errors.Is(err, ErrNotReferenced):
		http.Error(w, msg, http.StatusForbidden)
	case errors.Is(err, ErrNotFound):
		http.Error(w, msg, http.StatusNotFound)
	case errors.Is(err, ErrTooLarge):
		http.Error(w, msg, http.StatusRequestEntityTooLarge)
	case errors.Is(err, ErrNotGzip):
		http.Error(w, msg, http.StatusUnsupportedMediaType)
	case errors.Is(err, ErrQuota), errors.Is(err, ErrFull):
		b.log.Info("refused", "blob", ref.String(), "error", msg)
		http.Error(w, msg, http.StatusInsufficientStorage)
	case errors.Is(err, ErrBusy):
		w.Header().Set("Retry-After", retryAfterBusy)
		http.Error(w, msg, http.StatusServiceUnavailable)
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.log.Info("upload timed out", "blob", ref.String(), "timeout", b.uploadTimeout)
		http.Error(w, fmt.Sprintf("the upload took longer than %s: dropped", b.uploadTimeout), http.StatusRequestTimeout)
	default:
		b.log.Error("store blob", "blob", ref.String(), "error", msg)
		http.Error(w, "cannot store blob: "+msg, http.StatusInternalServerError)
	}
}

// contentType tells a .tar.gz from a delta release's root or part, by
// their first bytes, and calls anything else a file of a release.
func contentType(f io.ReaderAt) string {
	head := make([]byte, max(gzipHeaderLen, len(manifest.RootMagic), len(manifest.PartMagic)))
	n, _ := f.ReadAt(head, 0)
	switch head = head[:n]; {
	case checkGzipHeader(head) == nil:
		return "application/gzip"
	case manifest.IsRoot(head), bytes.HasPrefix(head, []byte(manifest.PartMagic)):
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}
