package release_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/aether-dev/aether-devhot/pkg/oci"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// ociRegistry is go-containerregistry's in-process registry on loopback,
// behind basic auth when user is not empty.
type ociRegistry struct {
	host       string
	user, pass string
}

func newOCIRegistry(t *testing.T, user, pass string) *ociRegistry {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r := &ociRegistry{user: user, pass: pass}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); user != "" && (!ok || u != user || p != pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// push writes img to repo and returns its artifact URL, by digest.
func (r *ociRegistry) push(t *testing.T, repo string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(r.host + "/" + repo + ":push")
	if err != nil {
		t.Fatal(err)
	}
	opt := remote.WithAuth(authn.Anonymous)
	if r.user != "" {
		opt = remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass})
	}
	if err := remote.Write(ref, img, opt); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return "oci://" + r.host + "/" + repo + "@" + d.String()
}

// pullSecrets writes a docker config for host as the webhook projects a
// pull secret, and returns the directory.
func pullSecrets(t *testing.T, host, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)),
	}}})
	if err := os.MkdirAll(filepath.Join(dir, "regcred"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "regcred", ".dockerconfigjson"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func releaseImage(t *testing.T, data []byte) v1.Image {
	t.Helper()
	img, err := oci.Image(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestApplyOCI: a release pushed as an OCI artifact is pulled by digest,
// verified and published like a download from the store; a second one too.
func TestApplyOCI(t *testing.T) {
	f := newFixture(t)
	reg := newOCIRegistry(t, "", "")
	for _, v := range []string{"v1", "v2"} {
		data := app(t, v)
		tg := mustTarget(t, digestOf(data), reg.push(t, "ns/app", releaseImage(t, data)))
		res, err := f.apply(tg, release.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if res.Downloaded != int64(len(data)) || res.Files != 3 {
			t.Errorf("%s: result %+v, want %d bytes downloaded and 3 files", v, res, len(data))
		}
		if got := f.read("current/version.txt"); got != v {
			t.Errorf("live version %q, want %q", got, v)
		}
	}
}

// TestApplyOCIPullSecrets: a registry that wants a login is pulled from
// with the pod's pull secret, and without one the refusal says so.
func TestApplyOCIPullSecrets(t *testing.T) {
	reg := newOCIRegistry(t, "dev", "s3cret")
	data := app(t, "v1")
	tg := mustTarget(t, digestOf(data), reg.push(t, "ns/app", releaseImage(t, data)))

	f := newFixture(t)
	_, err := f.ws.Apply(t.Context(), f.client, tg, release.Limits{})
	if release.ReasonOf(err) != refresh.ReasonHTTPStatus || !strings.Contains(err.Error(), "401") {
		t.Errorf("anonymous: %v, want http_status 401", err)
	}
	_, err = f.ws.Apply(t.Context(), f.client, tg, release.Limits{}, release.WithPullSecrets(pullSecrets(t, reg.host, "dev", "wrong")))
	if release.ReasonOf(err) != refresh.ReasonHTTPStatus {
		t.Errorf("wrong password: %v, want http_status", err)
	}
	if _, err := f.ws.Apply(t.Context(), f.client, tg, release.Limits{}, release.WithPullSecrets(pullSecrets(t, reg.host, "dev", "s3cret"))); err != nil {
		t.Fatalf("with the pull secret: %v", err)
	}
	if got := f.read("current/version.txt"); got != "v1" {
		t.Errorf("live version %q", got)
	}
}

// TestApplyOCIRefused: a manifest that is not the release the annotations
// name is refused before its layer is downloaded, for good (Final), and the
// previous release keeps serving.
func TestApplyOCIRefused(t *testing.T) {
	f := newFixture(t)
	live := f.publish("/v0.tgz", "v0")
	reg := newOCIRegistry(t, "", "")
	data := app(t, "v1")
	twoLayers, err := mutate.AppendLayers(releaseImage(t, data), static.NewLayer(app(t, "v2"), oci.ContentMediaType))
	if err != nil {
		t.Fatal(err)
	}
	image, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	imageLayers, _ := image.Layers()
	imageDigest, _ := imageLayers[0].Digest()
	cases := []struct {
		name, digest, url string
		want              refresh.Reason
		wantIn            string
	}{
		{"two layers", digestOf(data), reg.push(t, "ns/two", twoLayers), refresh.ReasonOCIArtifact, "2 layers"},
		{"a container image", imageDigest.String(), reg.push(t, "ns/image", image), refresh.ReasonOCIArtifact, "media type"},
		{"layer is another release", digestOf(app(t, "v3")), reg.push(t, "ns/app", releaseImage(t, data)), refresh.ReasonOCIArtifact, "two different releases"},
		{"no such manifest", digestOf(data), "oci://" + reg.host + "/ns/app@" + digestOf([]byte("nothing")), refresh.ReasonHTTPStatus, "404"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.apply(mustTarget(t, tc.digest, tc.url), release.Limits{})
			if release.ReasonOf(err) != tc.want || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("err %v, want %s with %q", err, tc.want, tc.wantIn)
			}
			if e, _ := err.(*release.Error); tc.want == refresh.ReasonOCIArtifact && (e == nil || !e.Final) {
				t.Errorf("%v is not final", err)
			}
			if f.ws.Current() != live.Digest {
				t.Errorf("live %q, want the previous %q", f.ws.Current(), live.Digest)
			}
		})
	}
}

// TestApplyOCILayerOverLimit: a layer that the manifest says is too big
// is not downloaded.
func TestApplyOCILayerOverLimit(t *testing.T) {
	f := newFixture(t)
	reg := newOCIRegistry(t, "", "")
	data := app(t, "v1")
	tg := mustTarget(t, digestOf(data), reg.push(t, "ns/app", releaseImage(t, data)))
	_, err := f.apply(tg, release.Limits{MaxBytes: int64(len(data)) - 1})
	if release.ReasonOf(err) != refresh.ReasonSizeLimit || !strings.Contains(err.Error(), "layer") {
		t.Errorf("err %v, want size_limit for the layer", err)
	}
}

// read is the content of a file under the workspace.
func (f *fixture) read(path string) string {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, path))
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}
