package oci_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/aether-dev/aether-devhot/pkg/oci"
)

func tgz(t *testing.T, content string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(content))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// TestImage: the artifact's one layer is the tgz byte for byte, so its
// digest is the release digest, with Flux's media types.
func TestImage(t *testing.T) {
	data := tgz(t, "release")
	img, err := oci.Image(data)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	l, err := oci.CheckManifest(raw, sha(data))
	if err != nil {
		t.Fatalf("CheckManifest of Image: %v\n%s", err, raw)
	}
	if l.Size != int64(len(data)) {
		t.Errorf("layer size %d, want %d", l.Size, len(data))
	}
	again, _ := oci.Image(data)
	if a, b := mustDigest(t, img), mustDigest(t, again); a != b {
		t.Errorf("the same release made two manifests, %s and %s", a, b)
	}
	layers, _ := img.Layers()
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(rc)
	if !bytes.Equal(got.Bytes(), data) {
		t.Error("the layer's bytes are not the tgz")
	}
}

func TestCheckManifest(t *testing.T) {
	data := tgz(t, "release")
	want := sha(data)
	img, err := oci.Image(data)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := img.Manifest()
	layer := good.Layers[0]
	edit := func(f func(m *v1.Manifest)) []byte {
		m := *good.DeepCopy()
		f(&m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other := layer
	other.Digest = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	cases := []struct {
		name   string
		raw    []byte
		wantIn string
	}{
		{"not json", []byte("<html>"), "not a manifest"},
		{"docker media type", edit(func(m *v1.Manifest) { m.MediaType = "application/vnd.docker.distribution.manifest.v2+json" }), "media type"},
		{"index", edit(func(m *v1.Manifest) { m.MediaType = "application/vnd.oci.image.index.v1+json" }), "media type"},
		{"image config", edit(func(m *v1.Manifest) { m.Config.MediaType = "application/vnd.oci.image.config.v1+json" }), "config media type"},
		{"no layer", edit(func(m *v1.Manifest) { m.Layers = nil }), "0 layers"},
		{"two layers", edit(func(m *v1.Manifest) { m.Layers = append(m.Layers, layer) }), "2 layers"},
		{"image layer", edit(func(m *v1.Manifest) { m.Layers[0].MediaType = "application/vnd.oci.image.layer.v1.tar+gzip" }), "layer media type"},
		{"sha512 layer", edit(func(m *v1.Manifest) {
			m.Layers[0].Digest = v1.Hash{Algorithm: "sha512", Hex: strings.Repeat("ab", 64)}
		}), "not a sha256 blob"},
		{"negative size", edit(func(m *v1.Manifest) { m.Layers[0].Size = -1 }), "not a sha256 blob"},
		{"layer is another release", edit(func(m *v1.Manifest) { m.Layers[0] = other }), "two different releases"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := oci.CheckManifest(tc.raw, want)
			if _, ok := errors.AsType[*oci.ManifestError](err); !ok || !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("err %v, want a ManifestError with %q", err, tc.wantIn)
			}
		})
	}
	if _, err := oci.CheckManifest(edit(func(*v1.Manifest) {}), want); err != nil {
		t.Errorf("the unedited manifest: %v", err)
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// FuzzCheckManifest: a registry's bytes never panic the check, and a
// manifest it accepts names exactly the release asked for.
func FuzzCheckManifest(f *testing.F) {
	img, err := oci.Image([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	if err != nil {
		f.Fatal(err)
	}
	raw, _ := img.RawManifest()
	m, _ := img.Manifest()
	f.Add(raw, m.Layers[0].Digest.String())
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[{},{}]}`), "sha256:")
	f.Fuzz(func(t *testing.T, raw []byte, want string) {
		l, err := oci.CheckManifest(raw, want)
		if err == nil && (l.Digest.String() != want || l.MediaType != oci.ContentMediaType) {
			t.Fatalf("accepted layer %+v for %q", l, want)
		}
	})
}
