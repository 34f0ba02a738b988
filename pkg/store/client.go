package store

import (
	"bytes"
	"context"
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
	resp, err := c.do(ctx, http.MethodHead, ref, nil)
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
	return false, c.statusError(http.MethodHead, ref, resp)
}

// Put uploads data as the blob ref.
func (c *Client) Put(ctx context.Context, ref BlobRef, data []byte) error {
	resp, err := c.do(ctx, http.MethodPut, ref, data)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		return nil
	}
	return c.statusError(http.MethodPut, ref, resp)
}

// do sends one request, again after a 503 with Retry-After.
func (c *Client) do(ctx context.Context, method string, ref BlobRef, data []byte) (*http.Response, error) {
	retries := c.BusyRetries
	if retries == 0 {
		retries = DefaultBusyRetries
	}
	for try := 0; ; try++ {
		var body io.Reader
		if data != nil {
			body = bytes.NewReader(data)
			if c.Progress != nil {
				body = &countingReader{r: body, total: int64(len(data)), progress: c.Progress}
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, c.URL(ref), body)
		if err != nil {
			return nil, err
		}
		if data != nil {
			req.ContentLength = int64(len(data)) // not known from a countingReader
			req.Header.Set("Content-Type", "application/gzip")
		}
		resp, err := c.HTTP.Do(req)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", c.Base, err)
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
func (c *Client) statusError(method string, ref BlobRef, resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return fmt.Errorf("store: %s %s: %s: %s", method, c.URL(ref), resp.Status, strings.TrimSpace(string(msg)))
}
