package release

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/aether-dev/aether-devhot/pkg/store"
)

// maxRedirects matches net/http's own default.
const maxRedirects = 10

// ClientOption configures NewHTTPClient.
type ClientOption func(*clientOptions)

type clientOptions struct {
	store     *url.URL
	tokenFile string
}

// WithStoreToken sends the token in tokenFile, as a bearer token, with
// every request to a URL under storeURL (store.Contains) and with no other:
// aether.dev/artifact-url is written by users and may point anywhere. The
// file is read for each request, because the kubelet rotates it.
func WithStoreToken(storeURL *url.URL, tokenFile string) ClientOption {
	return func(o *clientOptions) { o.store, o.tokenFile = storeURL, tokenFile }
}

// NewHTTPClient returns the client Apply downloads with. TLS is always
// verified, against the system roots plus the PEM certificates in caFile when
// it is not empty; there is deliberately no switch to turn verification off.
// Redirects may not leave the original host:port or go from https to http,
// because the digest annotation is trusted for one location only.
func NewHTTPClient(caFile string, opts ...ClientOption) (*http.Client, error) {
	var o clientOptions
	for _, f := range opts {
		f(&o)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		return nil, fmt.Errorf("system CA pool: %w", err)
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	// A server that adds Content-Encoding: gzip to a .tar.gz would otherwise
	// be decompressed transparently and fail the checksum.
	tr.DisableCompression = true
	var rt http.RoundTripper = tr
	if o.store != nil {
		rt = &storeToken{store: o.store, file: o.tokenFile, next: tr}
	}
	return &http.Client{Transport: rt, CheckRedirect: checkRedirect}, nil
}

// storeToken adds the store token to the requests for the store. It sits
// in the transport, not on the request, so that every hop of a redirect is
// judged by its own URL.
type storeToken struct {
	store *url.URL
	file  string
	next  http.RoundTripper
}

func (t *storeToken) RoundTrip(req *http.Request) (*http.Response, error) {
	if !store.Contains(t.store, req.URL) {
		return t.next.RoundTrip(req)
	}
	tok, err := os.ReadFile(t.file)
	if err == nil && len(bytes.TrimSpace(tok)) == 0 {
		err = errors.New("the file is empty")
	}
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("store token %s: %w", t.file, err)
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(tok)))
	return t.next.RoundTrip(r)
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errors.New("too many redirects")
	}
	first := via[0].URL
	if req.URL.Host != first.Host {
		return fmt.Errorf("redirect from host %s to another host %s refused", first.Host, req.URL.Host)
	}
	if first.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect from https to %s refused", req.URL.Scheme)
	}
	return nil
}
