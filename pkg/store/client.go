package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client uploads blobs to a store. Base is the store's root URL: the
// store itself (http://127.0.0.1:8080), or the API server's proxy to its
// Service (https://api/api/v1/namespaces/NS/services/NAME:http/proxy),
// with HTTP authenticated accordingly.
type Client struct {
	HTTP *http.Client
	Base string
}

// Has reports whether the store holds the blob, so that an unchanged
// artifact is not uploaded again.
func (c *Client) Has(ctx context.Context, id string) (bool, error) {
	resp, err := c.do(ctx, http.MethodHead, id, nil)
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
	return false, c.statusError(http.MethodHead, id, resp)
}

// Put uploads data as the blob id.
func (c *Client) Put(ctx context.Context, id string, data []byte) error {
	resp, err := c.do(ctx, http.MethodPut, id, data)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		return nil
	}
	return c.statusError(http.MethodPut, id, resp)
}

func (c *Client) do(ctx context.Context, method, id string, data []byte) (*http.Response, error) {
	var body io.Reader
	if data != nil {
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(id), body)
	if err != nil {
		return nil, err
	}
	if data != nil {
		req.Header.Set("Content-Type", "application/gzip")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", c.Base, err)
	}
	return resp, nil
}

func (c *Client) url(id string) string { return strings.TrimSuffix(c.Base, "/") + BlobPath(id) }

// statusError names the status and what the store (or the API server's
// proxy, for example a 403 from RBAC or a 503 with no store running) said.
func (c *Client) statusError(method, id string, resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return fmt.Errorf("store: %s %s: %s: %s", method, c.url(id), resp.Status, strings.TrimSpace(string(msg)))
}
