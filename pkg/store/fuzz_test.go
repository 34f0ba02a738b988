package store

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/manifest"
)

// FuzzParsePath: request paths are untrusted. Whatever the input, parsing
// must not panic, and an accepted path must name a namespace and a digest
// that are safe to use as file names, and give back the same path.
func FuzzParsePath(f *testing.F) {
	hex := strings.Repeat("a", 64)
	for _, s := range []string{
		BlobRef{"team-a", "web", hex}.Path(),
		BlobRef{"team-a", "web.v2", hex}.Path(),
		BlobRef{"team-a", "web", strings.ToUpper(hex)}.Path(),
		BlobRef{"..", "web", hex}.Path(),
		BlobRef{"team-a", "..", hex}.Path(),
		BlobRef{"team-a", "web", "../../etc/passwd"}.Path(),
		BlobRef{"team-a", "web", hex + "/"}.Path(),
		BlobRef{"team-a", "web", hex}.MissingPath(),
		BlobRef{"team-a", "web", hex}.ChildrenPath(),
		BlobRef{"team-a", "web", hex}.Path() + "/other",
		BlobRef{"team-a", "web", hex}.MissingPath() + "/",
		"/v1/namespaces/team-a/deployments/web/blobs/sha256/",
		"/v1/namespaces//deployments//blobs/sha256/" + hex,
		LegacyBlobPathPrefix + hex,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		ref, res, err := ParsePath(path)
		if err != nil {
			if ref != (BlobRef{}) {
				t.Fatalf("error %v with ref %+v", err, ref)
			}
			return
		}
		for _, part := range []string{ref.Namespace, ref.Hex} {
			if part == "" || strings.ContainsAny(part, "/.\\\\\\x00") || strings.ToLower(part) != part {
				t.Fatalf("accepted %q from %q", part, path)
			}
		}
		if strings.Contains(ref.Deployment, "/") || ref.Deployment == "" {
			t.Fatalf("accepted deployment %q from %q", ref.Deployment, path)
		}
		back := map[Resource]string{ResourceBlob: ref.Path(), ResourceMissing: ref.MissingPath(), ResourceChildren: ref.ChildrenPath()}[res]
		if back != path {
			t.Fatalf("%q parsed to %+v %d, which gives back %q", path, ref, res, back)
		}
	})
}

// FuzzStoreHandler sends one request of any method, path and body to a
// store that holds one blob of namespace team-a, where token "tok" may read
// team-a/web and Deployment team-a/web asks for the body's own digest. In
// the path, {sum} stands for that digest, so that uploads can succeed.
// Whatever the request: no panic, no 500; only what Access allowed
// succeeds; a PUT succeeds only with the bytes it names, stored or not; a
// stored blob is gzip or a root and has the digest it is named by; the
// delta release's endpoints succeed only for an announced root; a read returns
// exactly the bytes of its digest; nothing is left in tmp/.
func FuzzStoreHandler(f *testing.F) {
	stored := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 's', 't', 'o', 'r', 'e', 'd'}
	storedRef := BlobRef{"team-a", "web", digestOf(stored)}
	archive := gz(f, "the body")
	sum := BlobRef{"team-a", "web", "{sum}"}.Path()
	for _, s := range []struct {
		method, path string
		body         []byte
		token        bool
	}{
		{"PUT", sum, archive, false},
		{"PUT", sum, []byte("<html>not gzip</html>"), false},
		{"PUT", sum, archive[:9], false},
		{"PUT", BlobRef{"team-b", "web", "{sum}"}.Path(), archive, false},
		{"PUT", BlobRef{"team-a", "api", "{sum}"}.Path(), archive, true},
		{"PUT", storedRef.Path(), archive, false},
		{"GET", storedRef.Path(), nil, true},
		{"GET", storedRef.Path(), nil, false},
		{"HEAD", storedRef.Path(), nil, false},
		{"GET", BlobRef{"team-b", "web", storedRef.Hex}.Path(), nil, true},
		{"GET", storedRef.Path() + "/..", nil, true},
		{"GET", "/v1/namespaces/team-a/deployments/web/blobs/sha256/../../../../tmp", nil, true},
		{"GET", LegacyBlobPathPrefix + storedRef.Hex, nil, false},
		{"DELETE", storedRef.Path(), nil, true},
		{"POST", sum, archive, true},
		{"GET", "/readyz", nil, false},
		{"PUT", sum, []byte(manifest.RootMagic + "files 0 bytes 0\n"), false},
		{"GET", storedRef.MissingPath(), nil, false},
		{"GET", BlobRef{"team-a", "web", "{sum}"}.MissingPath(), nil, false},
		{"POST", storedRef.ChildrenPath(), tarGz(f, tarEntry{storedRef.Hex, stored}), false},
		{"POST", BlobRef{"team-a", "api", storedRef.Hex}.ChildrenPath(), archive, false},
	} {
		f.Add(s.method, s.path, s.body, s.token)
	}
	f.Fuzz(func(t *testing.T, method, path string, body []byte, withToken bool) {
		path = strings.ReplaceAll(path, "{sum}", digestOf(body))
		req, err := http.NewRequest(method, "http://store"+path, bytes.NewReader(body))
		if err != nil || req.URL.Path == "" {
			return // not a request a server would parse
		}
		if withToken {
			req.Header.Set("Authorization", "Bearer tok")
		}
		a := newFakeAccess()
		a.readers["tok"] = BlobRef{Namespace: "team-a", Deployment: "web"}
		a.announce(BlobRef{"team-a", "web", digestOf(body)})
		a.announce(storedRef)
		p := &pins{}
		p.pin(storedRef.Namespace, storedRef.Hex)
		lim := Limits{MaxBlobBytes: 1 << 10, MaxTotalBytes: 4 << 10, NamespaceQuotaBytes: 2 << 10, MaxUploads: 2, MaxNamespaceUploads: 1}
		s, err := Open(t.TempDir(), lim, WithPins(p.pinned))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(storedRef.Namespace, storedRef.Hex, bytes.NewReader(stored), -1); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		Handler(s, a, slog.New(slog.DiscardHandler)).ServeHTTP(rec, req)

		code := rec.Code
		if code >= 500 && code != http.StatusServiceUnavailable && code != http.StatusInsufficientStorage {
			t.Fatalf("%s %q: %d %q", method, path, code, rec.Body)
		}
		ref, res, perr := ParsePath(req.URL.Path)
		if code/100 == 2 && perr == nil && res == ResourceBlob {
			switch method {
			case http.MethodPut:
				if ref.Namespace != "team-a" || ref.Deployment != "web" {
					t.Fatalf("PUT %s succeeded (%d) without being announced", ref, code)
				}
				if ref.Hex != digestOf(body) {
					t.Fatalf("PUT %s succeeded (%d) with a body of sha256 %s", ref, code, digestOf(body))
				}
				if code == http.StatusCreated {
					f, err := s.Get(ref.Namespace, ref.Hex)
					if err != nil {
						t.Fatalf("201 for %s, then Get: %v", ref, err)
					}
					got, _ := io.ReadAll(f)
					f.Close()
					if digestOf(got) != ref.Hex || checkGzipHeader(got) != nil && !manifest.IsRoot(got) {
						t.Fatalf("stored %s holds %d bytes of sha256 %s, gzip header: %v", ref, len(got), digestOf(got), checkGzipHeader(got))
					}
				}
			case http.MethodGet:
				if !withToken || ref.Namespace != "team-a" || ref.Deployment != "web" {
					t.Fatalf("GET %s succeeded (%d) without the reader's token", ref, code)
				}
				if rec.Body.Len() > 0 && req.Header.Get("Range") == "" && digestOf(rec.Body.Bytes()) != ref.Hex {
					t.Fatalf("GET %s returned bytes of sha256 %s", ref, digestOf(rec.Body.Bytes()))
				}
			}
		}
		if code/100 == 2 && perr == nil && res != ResourceBlob && (ref.Namespace != "team-a" || ref.Deployment != "web") {
			t.Fatalf("%s %q succeeded (%d) without being announced", method, path, code)
		}
		if code/100 == 2 && perr != nil && strings.HasPrefix(req.URL.Path, blobPathPrefix) {
			t.Fatalf("%s %q answered %d for a path that does not parse: %v", method, path, code, perr)
		}
		if tmp, _ := os.ReadDir(s.tmp); len(tmp) != 0 {
			t.Fatalf("left in tmp/: %v", tmp)
		}
		if s.Total() > lim.MaxTotalBytes || s.NamespaceTotal("team-a") > lim.NamespaceQuotaBytes || !s.Has(storedRef.Namespace, storedRef.Hex) {
			t.Fatalf("total %d, team-a %d, pinned blob kept %v", s.Total(), s.NamespaceTotal("team-a"), s.Has(storedRef.Namespace, storedRef.Hex))
		}
	})
}
