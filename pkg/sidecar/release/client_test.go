package release_test

import (
	"encoding/pem"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// TestHTTPClientTLS verifies TLS: the test server's self-signed certificate
// is refused with system roots only and accepted from a CA file.
func TestHTTPClientTLS(t *testing.T) {
	f := newFixture(t)
	b := app(t, "tls")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(b) }))
	// The refused handshake is the point of the test, not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	tg := mustTarget(t, digestOf(b), srv.URL+"/a.tgz")

	if _, err := f.apply(tg, release.Limits{}); release.ReasonOf(err) != refresh.ReasonDownload {
		t.Fatalf("untrusted certificate: error %v, want reason download", err)
	}

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	client, err := release.NewHTTPClient(caFile)
	if err != nil {
		t.Fatal(err)
	}
	f.client = client
	if _, err := f.apply(tg, release.Limits{}); err != nil {
		t.Fatalf("with the CA file: %v", err)
	}
}

func TestHTTPClientBadCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{notPEM, filepath.Join(dir, "missing.pem")} {
		if _, err := release.NewHTTPClient(p); err == nil {
			t.Errorf("NewHTTPClient(%s) accepted it", p)
		}
	}
}

// TestSameHostRedirect follows a redirect that stays on the host.
func TestSameHostRedirect(t *testing.T) {
	f := newFixture(t)
	b := app(t, "moved")
	f.serve("/new.tgz", b)
	f.srv.Config.Handler = redirectOld(f.srv.Config.Handler)
	if _, err := f.apply(mustTarget(t, digestOf(b), f.srv.URL+"/old.tgz"), release.Limits{}); err != nil {
		t.Fatal(err)
	}
}

func redirectOld(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old.tgz" {
			http.Redirect(w, r, "/new.tgz", http.StatusMovedPermanently)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TestStoreTokenOnlyToTheStore: the store token goes with downloads from
// the store and with no other, whatever the artifact URL says, and is read
// again for each download because the kubelet rotates it.
func TestStoreTokenOnlyToTheStore(t *testing.T) {
	b := app(t, "tok")
	var mu sync.Mutex
	seen := map[string][]string{} // server -> Authorization headers
	serve := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[name] = append(seen[name], r.Header.Get("Authorization"))
			mu.Unlock()
			if r.URL.Path == "/moved.tgz" {
				http.Redirect(w, r, "/a.tgz", http.StatusFound)
				return
			}
			w.Write(b)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	storeSrv, other := serve("store"), serve("other")
	tokenFile := filepath.Join(t.TempDir(), "store-token")
	writeToken := func(s string) {
		if err := os.WriteFile(tokenFile, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeToken("first-token\n")
	storeURL, err := url.Parse(storeSrv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	client, err := release.NewHTTPClient("", release.WithStoreToken(storeURL, tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) error {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	for _, u := range []string{storeSrv.URL + "/a.tgz", other.URL + "/a.tgz", storeSrv.URL + "/moved.tgz"} {
		if err := get(u); err != nil {
			t.Fatal(err)
		}
	}
	writeToken("rotated-token")
	if err := get(storeSrv.URL + "/a.tgz"); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"store": {"Bearer first-token", "Bearer first-token", "Bearer first-token", "Bearer rotated-token"},
		"other": {""},
	}
	snapshot := func() map[string][]string {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(seen)
	}
	if got := snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("Authorization seen %q, want %q", got, want)
	}

	// No token file: the download fails and says why, and nothing is sent.
	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}
	err = get(storeSrv.URL + "/a.tgz")
	if got := snapshot(); err == nil || !strings.Contains(err.Error(), "store token "+tokenFile) || len(got["store"]) != 4 {
		t.Errorf("without a token file: %v, %d requests", err, len(got["store"]))
	}
}

// TestRefusalSaysWhy: a store's 401 or 403 says why in its body; the
// error carries its first line, cleaned.
func TestRefusalSaysWhy(t *testing.T) {
	f := newFixture(t)
	b := app(t, "x")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "system:serviceaccount:b:web-devhot may not get deployment a/web\x1b[31m\nsecond line", http.StatusForbidden)
	}))
	defer srv.Close()
	_, err := f.apply(mustTarget(t, digestOf(b), srv.URL+"/a.tgz"), release.Limits{})
	if release.ReasonOf(err) != refresh.ReasonHTTPStatus || !strings.HasSuffix(err.Error(), "403 Forbidden: system:serviceaccount:b:web-devhot may not get deployment a/web[31m") {
		t.Errorf("got %v", err)
	}
}
