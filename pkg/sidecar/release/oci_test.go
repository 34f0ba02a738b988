package release_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/aether-dev/aether-devhot/pkg/oci"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
	"github.com/aether-dev/aether-devhot/test/framework/ociregistry"
)

// push writes img to repo on r and returns its artifact URL, by digest.
func push(t *testing.T, r *ociregistry.Registry, repo string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(r.Host + "/" + repo + ":push")
	if err != nil {
		t.Fatal(err)
	}
	opt := remote.WithAuth(authn.Anonymous)
	if r.User != "" {
		opt = remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password})
	}
	if err := remote.Write(ref, img, opt); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return "oci://" + r.Host + "/" + repo + "@" + d.String()
}

func releaseImage(t *testing.T, data []byte) v1.Image {
	t.Helper()
	img, err := oci.Image(data)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestApplyOCI: a release pushed as an OCI artifact is pulled by digest,
// verified and published like a download from the store; a second one too.
func TestApplyOCI(t *testing.T) {
	f := newFixture(t)
	reg := ociregistry.Start(t, "", "")
	for _, v := range []string{"v1", "v2"} {
		data := app(t, v)
		tg := mustTarget(t, digestOf(data), push(t, reg, "ns/app", releaseImage(t, data)))
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
	reg := ociregistry.Start(t, "dev", "s3cret")
	data := app(t, "v1")
	tg := mustTarget(t, digestOf(data), push(t, reg, "ns/app", releaseImage(t, data)))

	f := newFixture(t)
	_, err := f.ws.Apply(t.Context(), f.client, tg, release.Limits{})
	if release.ReasonOf(err) != refresh.ReasonHTTPStatus || !strings.Contains(err.Error(), "401") {
		t.Errorf("anonymous: %v, want http_status 401", err)
	}
	_, err = f.ws.Apply(t.Context(), f.client, tg, release.Limits{}, release.WithPullSecrets(reg.PullSecretsDir(t, "regcred", "dev", "wrong")))
	if release.ReasonOf(err) != refresh.ReasonHTTPStatus {
		t.Errorf("wrong password: %v, want http_status", err)
	}
	if _, err := f.ws.Apply(t.Context(), f.client, tg, release.Limits{}, release.WithPullSecrets(reg.PullSecretsDir(t, "regcred", "dev", "s3cret"))); err != nil {
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
	reg := ociregistry.Start(t, "", "")
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
		{"two layers", digestOf(data), push(t, reg, "ns/two", twoLayers), refresh.ReasonOCIArtifact, "2 layers"},
		{"a container image", imageDigest.String(), push(t, reg, "ns/image", image), refresh.ReasonOCIArtifact, "media type"},
		{"layer is another release", digestOf(app(t, "v3")), push(t, reg, "ns/app", releaseImage(t, data)), refresh.ReasonOCIArtifact, "two different releases"},
		{"no such manifest", digestOf(data), "oci://" + reg.Host + "/ns/app@" + digestOf([]byte("nothing")), refresh.ReasonHTTPStatus, "404"},
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
	reg := ociregistry.Start(t, "", "")
	data := app(t, "v1")
	tg := mustTarget(t, digestOf(data), push(t, reg, "ns/app", releaseImage(t, data)))
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
