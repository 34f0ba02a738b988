package store

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"
)

// ParseURL parses a store's root URL as the webhook (--store-url) and the
// fetcher (AETHER_STORE_URL) take it: absolute http or https, a host, and
// no credentials, query or fragment. It is also the audience of the
// fetchers' store tokens, so both sides must be given the same string.
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("store URL %q: %w", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("store URL %q: want http:// or https://", s)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("store URL %q: no host", s)
	case u.User != nil:
		return nil, fmt.Errorf("store URL %q: must not carry credentials", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("store URL %q: must have no query or fragment", s)
	}
	return u, nil
}

// Contains reports whether u addresses the store at base: the same scheme,
// the same host and port (the default port spelled or not), and a path
// under base's. The fetcher shows its store token only to such URLs.
func Contains(base, u *url.URL) bool {
	if u == nil || !strings.EqualFold(u.Scheme, base.Scheme) || u.User != nil || !strings.EqualFold(hostPort(u), hostPort(base)) {
		return false
	}
	root := strings.TrimSuffix(base.Path, "/")
	p := path.Clean("/" + u.Path)
	return root == "" || p == root || strings.HasPrefix(p, root+"/")
}

// hostPort is u's host and port, with the scheme's default port filled in.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return net.JoinHostPort(strings.TrimSuffix(u.Hostname(), "."), port)
}
