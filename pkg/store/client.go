package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client uploads blobs to a store. Base is the store's root URL: the
// store itself (http://127.0.0.1:8080), or the API server's proxy to its
// Service (https://api/api/v1/namespaces/NS/services/NAME:http/proxy),
// with HTTP authenticated accordingly. The store lets a blob be uploaded
// only while its Deployment asks for it (aether.dev/upload-digest or
// aether.dev/digest), so set that first.
type Client struct {
	HTTP *http.Client
	Base string
	// BusyRetries is how many times a 503 with Retry-After (every upload
	// slot taken, or the store starting) is tried again; 0 means
	// DefaultBusyRetries.
	BusyRetries int
	// Progress, if set, is told how many bytes of an upload's body have
	// been sent so far, and the body's size, as the bytes leave.
	Progress func(sent, total int64)
}

// DefaultBusyRetries, with the store's Retry-After of 2 s, waits up to
// about 20 s for an upload slot.
const DefaultBusyRetries = 10

// maxRetryAfter caps the wait of one Retry-After.
const maxRetryAfter = 5 * time.Second

// Has reports whether the store holds the blob, so that an unchanged
// artifact is not uploaded again.
func (c *Client) Has(ctx context.Context, ref BlobRef) (bool, error) {
	resp, err := c.do(ctx, http.MethodHead, c.URL(ref), nil)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, c.statusError(http.MethodHead, c.URL(ref), resp)
}

// Put uploads data as the blob ref.
func (c *Client) Put(ctx context.Context, ref BlobRef, data []byte) error {
	body := func() (io.Reader, int64, func()) {
		return c.counting(bytes.NewReader(data), int64(len(data))), int64(len(data)), func() {}
	}
	return c.upload(ctx, http.MethodPut, c.URL(ref), body)
}

// Missing asks which parts and files the delta release of root lacks in
// the store, once root itself is stored (Put).
func (c *Client) Missing(ctx context.Context, root BlobRef) (Missing, error) {
	url := strings.TrimSuffix(c.Base, "/") + root.MissingPath()
	resp, err := c.do(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Missing{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Missing{}, c.statusError(http.MethodGet, url, resp)
	}
	var m Missing
	// Two lists of at most a release's files, of 67 bytes each.
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMissingBytes)).Decode(&m); err != nil {
		return Missing{}, fmt.Errorf("store: GET %s: %w", url, err)
	}
	return m, nil
}

// maxMissingBytes bounds the answer of Missing: two lists of every file
// a release may have.
const maxMissingBytes = 2*100_000*(64+3) + 1024

// Child is one part or file of a delta release for PutChildren.
type Child struct {
	// Hex is the sha256 of its bytes, which names its blob.
	Hex string
	// Size is its length in bytes.
	Size int64
	// Open returns its bytes; it may be called again when the upload is
	// tried again.
	Open func() (io.ReadCloser, error)
}

// PutChildren uploads the parts and files of root in one request, a
// .tar.gz streamed as it is written, never held in memory. The store takes
// each only while root's Deployment asks for root, and only a part of root
// or a file of one of its stored parts: a part must come before its
// files, in this upload or an earlier one. Progress counts the children's
// bytes as they are read.
func (c *Client) PutChildren(ctx context.Context, root BlobRef, children []Child) error {
	var total int64
	for _, ch := range children {
		total += ch.Size
	}
	body := func() (io.Reader, int64, func()) {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			pw.CloseWithError(c.writeChildren(pw, children, total))
		}()
		return pr, -1, func() {
			pr.CloseWithError(errors.New("the request is over"))
			<-done
		}
	}
	return c.upload(ctx, http.MethodPost, strings.TrimSuffix(c.Base, "/")+root.ChildrenPath(), body)
}

// Uploaded is what PutRelease sent: how many files and parts, and their
// bytes with the root's. OfFiles and OfParts, which the caller sets, are
// the release's. String is the line push prints; ParseUploaded reads it
// back, for the tests and the bench.
type Uploaded struct {
	Files, OfFiles, Parts, OfParts int
	Bytes                          int64
}

// uploadedFormat is the one form of Uploaded's line.
const uploadedFormat = "uploaded %d of %d files and %d of %d parts, %d bytes with the root"

// String is the line push prints after a delta release's upload.
func (u Uploaded) String() string {
	return fmt.Sprintf(uploadedFormat, u.Files, u.OfFiles, u.Parts, u.OfParts, u.Bytes)
}

// ParseUploaded reads a line that String wrote; ok is false for any other.
func ParseUploaded(line string) (u Uploaded, ok bool) {
	line = strings.TrimSpace(line)
	if _, err := fmt.Sscanf(line, uploadedFormat, &u.Files, &u.OfFiles, &u.Parts, &u.OfParts, &u.Bytes); err != nil {
		return Uploaded{}, false
	}
	return u, u.String() == line
}

// maxReleaseRounds: Missing's first answer names the parts the store lacks
// and the files it lacks of the parts it has; the second, the files of
// the parts just sent; the third must be empty.
const maxReleaseRounds = 3

// PutRelease puts the delta release whose root is data: the root unless
// the store has it, then what Missing names, in at most two uploads; blob
// gives the size of each part and file by its sha256 and what reads it
// (pack.Release.Open). A part or file already in the store, for any
// release of the namespace, is not sent again.
func (c *Client) PutRelease(ctx context.Context, root BlobRef, data []byte,
	blob func(hex string) (size int64, open func() (io.ReadCloser, error), ok bool)) (Uploaded, error) {
	var up Uploaded
	has, err := c.Has(ctx, root)
	if err == nil && !has {
		err = c.Put(ctx, root, data)
		up.Bytes += int64(len(data))
	}
	if err != nil {
		return up, err
	}
	for range maxReleaseRounds {
		m, err := c.Missing(ctx, root)
		if err != nil {
			return up, err
		}
		if len(m.Parts)+len(m.Files) == 0 {
			return up, nil
		}
		var children []Child
		for _, h := range append(m.Parts, m.Files...) {
			size, open, ok := blob(h)
			if !ok {
				return up, fmt.Errorf("store: asks for %s, which release %s does not have", h, root.Hex)
			}
			children = append(children, Child{Hex: h, Size: size, Open: open})
			up.Bytes += size
		}
		if err := c.PutChildren(ctx, root, children); err != nil {
			return up, err
		}
		up.Parts += len(m.Parts)
		up.Files += len(m.Files)
	}
	return up, fmt.Errorf("store: still lacks parts or files of release %s after %d uploads", root.Hex, maxReleaseRounds-1)
}

// writeChildren writes children as a .tar.gz to w, each entry named by
// its sha256.
func (c *Client) writeChildren(w io.Writer, children []Child, total int64) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	progress := &countingReader{total: total, progress: c.Progress}
	for _, ch := range children {
		if err := tw.WriteHeader(&tar.Header{Name: ch.Hex, Mode: 0o644, Size: ch.Size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		r, err := ch.Open()
		if err != nil {
			return fmt.Errorf("sha256:%s: %w", ch.Hex, err)
		}
		progress.r = r
		var src io.Reader = r
		if c.Progress != nil {
			src = progress
		}
		_, err = io.Copy(tw, src)
		if err = errors.Join(err, r.Close()); err != nil {
			return fmt.Errorf("sha256:%s: %w", ch.Hex, err)
		}
	}
	return errors.Join(tw.Close(), zw.Close())
}

// upload sends a body that body makes afresh for each try and expects a
// 200 or a 201.
func (c *Client) upload(ctx context.Context, method, url string, body func() (io.Reader, int64, func())) error {
	resp, err := c.do(ctx, method, url, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		return nil
	}
	return c.statusError(method, url, resp)
}

// counting wraps r to tell c.Progress, if set, how much of total has been
// read.
func (c *Client) counting(r io.Reader, total int64) io.Reader {
	if c.Progress == nil {
		return r
	}
	return &countingReader{r: r, total: total, progress: c.Progress}
}

// do sends one request, again after a 503 with Retry-After. body, if not
// nil, makes the request's body for each try, with its length (-1 if
// unknown) and what ends it once the try is over.
func (c *Client) do(ctx context.Context, method, url string, body func() (io.Reader, int64, func())) (*http.Response, error) {
	retries := c.BusyRetries
	if retries == 0 {
		retries = DefaultBusyRetries
	}
	for try := 0; ; try++ {
		resp, err := c.try(ctx, method, url, body)
		if err != nil {
			return nil, err
		}
		wait, busy := retryAfter(resp)
		if !busy || try >= retries {
			return resp, nil
		}
		resp.Body.Close()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// try sends the request once.
func (c *Client) try(ctx context.Context, method, url string, body func() (io.Reader, int64, func())) (*http.Response, error) {
	var r io.Reader
	length := int64(0)
	if body != nil {
		var end func()
		r, length, end = body()
		defer end()
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = length // not known from a countingReader or a pipe
		req.Header.Set("Content-Type", "application/gzip")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", c.Base, err)
	}
	return resp, nil
}

// retryAfter reports whether resp is a 503 that asks to be tried again, and
// after how long.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusServiceUnavailable {
		return 0, false
	}
	s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0, false
	}
	return min(time.Duration(s)*time.Second, maxRetryAfter), true
}

// countingReader tells progress how much of a body has been read.
type countingReader struct {
	r        io.Reader
	sent     int64
	total    int64
	progress func(sent, total int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.sent += int64(n)
		c.progress(c.sent, c.total)
	}
	return n, err
}

// URL is where ref lives under Base.
func (c *Client) URL(ref BlobRef) string { return strings.TrimSuffix(c.Base, "/") + ref.Path() }

// statusError names the status and what the store (or the API server's
// proxy, for example a 403 from RBAC or a 503 with no store running) said.
func (c *Client) statusError(method, url string, resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return fmt.Errorf("store: %s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(msg)))
}
