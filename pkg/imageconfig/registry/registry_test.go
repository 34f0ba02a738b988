package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
)

// testRegistry is go-containerregistry's in-memory registry on loopback,
// counting requests by method and kind, optionally behind basic auth.
type testRegistry struct {
	*httptest.Server
	mu    sync.Mutex
	count map[string]int // "HEAD manifests", "GET blobs", ...
	user  string         // basic auth required when set
}

func newTestRegistry(t *testing.T, user string) *testRegistry {
	t.Helper()
	r := &testRegistry{count: map[string]int{}, user: user}
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.user != "" {
			if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != "secret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"who are you"}]}`, http.StatusUnauthorized)
				return
			}
		}
		kind := "other"
		for _, k := range []string{"manifests", "blobs"} {
			if strings.Contains(req.URL.Path, "/"+k+"/") {
				kind = k
			}
		}
		r.mu.Lock()
		r.count[req.Method+" "+kind]++
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *testRegistry) host() string { return strings.TrimPrefix(r.URL, "http://") }

func (r *testRegistry) requests() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.count {
		out[k] = v
	}
	clear(r.count)
	return out
}

// layer is a tar layer of files (path -> content; "" content with a
// trailing "/" is a directory).
func layer(t *testing.T, files ...string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		p, data := files[i], files[i+1]
		h := &tar.Header{Name: p, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(p, "/") {
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(data)); err != nil && h.Typeflag == tar.TypeReg {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// push writes an image of layers (bottom first) with cfg as ref.
func push(t *testing.T, ref string, cfg v1.Config, layers ...v1.Layer) v1.Hash {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, cfg); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func pkgJSON(start string) string {
	b, _ := json.Marshal(map[string]any{"name": "x", "scripts": map[string]string{"start": start}})
	return string(b)
}

func TestConfigCachedByDigest(t *testing.T) {
	reg := newTestRegistry(t, "")
	ref := reg.host() + "/shop/api:1"
	cfg := v1.Config{Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"node", "src/server.js"}, WorkingDir: "/app",
		Env: []string{"NODE_VERSION=20.20.2"}, User: "node"}
	d := push(t, ref, cfg, layer(t, "app/", "", "app/src/server.js", "x"))
	reg.requests()

	r := New(Options{})
	now := time.Now()
	r.now = func() time.Time { return now }
	src := r.Source(context.Background())
	got, err := src.Config(ref)
	if err != nil {
		t.Fatal(err)
	}
	want := imageconfig.Config{Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, WorkingDir: "/app", Env: cfg.Env, User: "node"}
	if mustJSON(t, got) != mustJSON(t, want) {
		t.Fatalf("config %s, want %s", mustJSON(t, got), mustJSON(t, want))
	}
	if n := reg.requests(); n["HEAD manifests"] != 1 || n["GET blobs"] != 1 {
		t.Errorf("first lookup: %v, want one HEAD of the tag and one config blob", n)
	}
	// Another request within the tag's TTL, and one by digest: no traffic.
	for _, image := range []string{ref, reg.host() + "/shop/api@" + d.String()} {
		if _, err := r.Source(context.Background()).Config(image); err != nil {
			t.Fatal(err)
		}
	}
	if n := reg.requests(); len(n) != 0 {
		t.Errorf("cached lookups made requests: %v", n)
	}
	// Past the TTL the tag is asked again, with a HEAD only.
	now = now.Add(DefaultTagTTL + time.Second)
	if _, err := r.Source(context.Background()).Config(ref); err != nil {
		t.Fatal(err)
	}
	if n := reg.requests(); n["HEAD manifests"] != 1 || n["GET blobs"] != 0 || n["GET manifests"] != 0 {
		t.Errorf("after the TTL: %v, want one HEAD", n)
	}
	// The tag moves: the new image's config is read.
	cfg.Cmd = []string{"node", "src/main.js"}
	push(t, ref, cfg, layer(t, "app/", "", "app/src/main.js", "y"))
	now = now.Add(DefaultTagTTL + time.Second)
	got, err = r.Source(context.Background()).Config(ref)
	if err != nil || got.Cmd[1] != "src/main.js" {
		t.Fatalf("after the tag moved: %+v, %v", got, err)
	}
}

func TestPackageJSON(t *testing.T) {
	reg := newTestRegistry(t, "")
	base := layer(t, "usr/local/bin/node", strings.Repeat("n", 1<<20))
	deps := layer(t, "app/", "", "app/package.json", pkgJSON("node old.js"), "app/node_modules/express/index.js", strings.Repeat("e", 1<<20))
	src := layer(t, "app/package.json", pkgJSON("node src/server.js"), "app/src/server.js", "x")
	cases := []struct {
		name   string
		layers []v1.Layer
		dir    string
		want   string // the start script; "" for not found
		blobs  int    // layer blobs fetched
	}{
		{"top layer has it", []v1.Layer{base, deps, src}, "/app", "node src/server.js", 1},
		{"lower layer", []v1.Layer{base, deps, layer(t, "app/src/server.js", "x")}, "/app", "node old.js", 2},
		{"absent", []v1.Layer{base, src}, "/srv", "", 2},
		{"whiteout", []v1.Layer{base, deps, layer(t, "app/.wh.package.json", "")}, "/app", "", 1},
		{"opaque directory", []v1.Layer{base, deps, layer(t, "app/.wh..wh..opq", "", "app/index.js", "x")}, "/app", "", 1},
		{"parent deleted", []v1.Layer{base, deps, layer(t, ".wh.app", "")}, "/app", "", 1},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := reg.host() + "/pkg/case:" + string(rune('a'+i))
			push(t, ref, v1.Config{WorkingDir: "/app"}, c.layers...)
			reg.requests()
			r := New(Options{})
			got, err := r.Source(context.Background()).PackageJSON(ref, c.dir)
			if c.want == "" {
				if imageconfig.ReasonOf(err) != imageconfig.NotFound {
					t.Fatalf("got %+v, %v; want NotFound", got, err)
				}
			} else if err != nil || got.Scripts["start"] != c.want {
				t.Fatalf("got %+v, %v; want start %q", got, err, c.want)
			}
			if n := reg.requests()["GET blobs"]; n != c.blobs {
				t.Errorf("fetched %d layers, want %d", n, c.blobs)
			}
			// A second ask, found or not, is answered from the cache.
			if _, err2 := r.Source(context.Background()).PackageJSON(ref, c.dir); (err2 == nil) != (err == nil) {
				t.Errorf("cached answer differs: %v vs %v", err2, err)
			}
			if n := reg.requests(); n["GET blobs"] != 0 {
				t.Errorf("cached ask fetched: %v", n)
			}
		})
	}
	t.Run("budget", func(t *testing.T) {
		ref := reg.host() + "/pkg/big:1"
		push(t, ref, v1.Config{}, deps, layer(t, "x", strings.Repeat("b", 2<<20)))
		r := New(Options{MaxLayerBytes: 1 << 20})
		if _, err := r.Source(context.Background()).PackageJSON(ref, "/app"); err == nil || !strings.Contains(err.Error(), "without finding") {
			t.Fatalf("got %v, want the budget's error", err)
		}
	})
}

func TestLookupErrors(t *testing.T) {
	reg := newTestRegistry(t, "alice")
	ref := reg.host() + "/private/api:1"
	func() {
		reg.user = ""
		defer func() { reg.user = "alice" }()
		push(t, ref, v1.Config{Cmd: []string{"node", "a.js"}})
	}()
	secret := func(host string) *corev1.Secret {
		auth := base64.StdEncoding.EncodeToString([]byte("alice:secret"))
		b, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}})
		return &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: b}}
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()

	for _, c := range []struct {
		name    string
		image   string
		secrets map[string]*corev1.Secret
		timeout time.Duration
		want    imageconfig.Reason // "" for success
	}{
		{name: "no credentials", image: ref, want: imageconfig.Unauthorized},
		{name: "pull secret", image: ref, secrets: map[string]*corev1.Secret{"regcred": secret("http://" + reg.host() + "/v2/")}},
		{name: "secret for another registry", image: ref, secrets: map[string]*corev1.Secret{"regcred": secret("ghcr.io")}, want: imageconfig.Unauthorized},
		{name: "missing secret", image: ref, want: imageconfig.Unauthorized},
		{name: "no such tag", image: reg.host() + "/private/api:2", secrets: map[string]*corev1.Secret{"regcred": secret(reg.host())}, want: imageconfig.NotFound},
		{name: "bad reference", image: "Not A/Ref::", want: imageconfig.Invalid},
		{name: "unreachable", image: deadAddr + "/x/y:1", want: imageconfig.Unreachable},
		{name: "too slow", image: strings.TrimPrefix(hang.URL, "http://") + "/x/y:1", timeout: 300 * time.Millisecond, want: imageconfig.Unreachable},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps := &PullSecrets{Names: []string{"regcred"}, Get: func(_ context.Context, n string) (*corev1.Secret, error) {
				if s, ok := c.secrets[n]; ok {
					return s, nil
				}
				return nil, io.ErrUnexpectedEOF
			}}
			ctx := context.Background()
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			start := time.Now()
			_, err := New(Options{Keychain: ps}).Source(ctx).Config(c.image)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := imageconfig.ReasonOf(err); got != c.want {
				t.Fatalf("reason %q (%v), want %q", got, err, c.want)
			}
			if c.timeout > 0 && time.Since(start) > c.timeout+2*time.Second {
				t.Errorf("took %s, past the deadline of %s", time.Since(start), c.timeout)
			}
		})
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"https://index.docker.io/v1/":    "index.docker.io",
		"docker.io":                      "index.docker.io",
		"registry-1.docker.io":           "index.docker.io",
		"http://10.201.0.2:5000/v2/":     "10.201.0.2:5000",
		"registry.example.com":           "registry.example.com",
		"https://ghcr.io/v2/owner/image": "ghcr.io",
	} {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
