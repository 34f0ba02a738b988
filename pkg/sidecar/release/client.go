package release

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// maxRedirects matches net/http's own default.
const maxRedirects = 10

// NewHTTPClient returns the client Apply downloads with. TLS is always
// verified, against the system roots plus the PEM certificates in caFile when
// it is not empty; there is deliberately no switch to turn verification off.
// Redirects may not leave the original host:port or go from https to http,
// because the digest annotation is trusted for one location only.
func NewHTTPClient(caFile string) (*http.Client, error) {
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
	return &http.Client{Transport: tr, CheckRedirect: checkRedirect}, nil
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
