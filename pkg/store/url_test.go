package store

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, wantErr string
	}{
		{"http://aether-devhot-store.aether-system.svc", ""},
		{"https://10.96.0.80:8443/store", ""},
		{"store.svc", "want http:// or https://"},
		{"ftp://store", "want http:// or https://"},
		{"http://", "no host"},
		{"http://user:pw@store", "must not carry credentials"},
		{"http://store/?a=1", "no query or fragment"},
		{"http://store/#x", "no query or fragment"},
		{"http://st ore", "invalid character"},
	} {
		_, err := ParseURL(tc.in)
		if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseURL(%q): %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

// TestContains: where the fetcher sends its store token. Everything the
// user can write into aether.dev/artifact-url that is not the store gets
// none.
func TestContains(t *testing.T) {
	for _, tc := range []struct {
		base, u string
		want    bool
	}{
		{"http://store.ns.svc", "http://store.ns.svc/v1/namespaces/a/deployments/web/blobs/sha256/x", true},
		{"http://store.ns.svc", "http://STORE.ns.svc:80/v1/x", true},
		{"http://store.ns.svc:80", "http://store.ns.svc/v1/x", true},
		{"http://store.ns.svc.", "http://store.ns.svc/v1/x", true},
		{"http://10.96.0.80", "http://10.96.0.80/v1/x", true},
		{"https://store/root/", "https://store/root/v1/x", true},
		{"https://store/root", "https://store/root", true},
		{"http://store.ns.svc", "https://store.ns.svc/v1/x", false},
		{"https://store.ns.svc", "http://store.ns.svc/v1/x", false},
		{"http://store.ns.svc", "http://store.ns.svc:8080/v1/x", false},
		{"http://store.ns.svc", "http://store.ns.svc.evil.example/v1/x", false},
		{"http://store.ns.svc", "http://evil.example/store.ns.svc/v1/x", false},
		{"http://store.ns.svc", "http://store.ns.svc@evil.example/v1/x", false},
		{"http://store.ns.svc", "http://evil@store.ns.svc/v1/x", false},
		{"http://store.other-ns.svc", "http://store.ns.svc/v1/x", false},
		{"https://store/root", "https://store/rootkit/x", false},
		{"https://store/root", "https://store/root/../admin", false},
		{"https://store/root", "https://store/", false},
	} {
		base, err := ParseURL(tc.base)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(tc.u)
		if err != nil {
			t.Fatal(err)
		}
		if got := Contains(base, u); got != tc.want {
			t.Errorf("Contains(%s, %s) = %v, want %v", tc.base, tc.u, got, tc.want)
		}
	}
}
