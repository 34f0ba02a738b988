package release_test

import (
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
