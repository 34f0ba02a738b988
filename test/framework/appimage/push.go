package appimage

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// transport talks to the registry directly, whatever proxy the
// environment names: the cluster's registry is on this machine.
var transport = func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	return t
}()

// Push pushes img to ref (registry/repository:tag) over plain HTTP, without
// auth, as the cluster's registry serves it. Blobs the registry has are not
// uploaded again.
func Push(img v1.Image, ref string) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, remote.WithTransport(transport)); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// Pull is the image at ref (plain HTTP, no auth); its layers are read
// lazily, when used.
func Pull(ref string) (v1.Image, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, remote.WithTransport(transport))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	return img, nil
}

// ContentTag is the tag that names img by its content: "sha-" and the
// first 16 hex digits of its manifest digest. An unchanged image keeps its
// tag; a changed one gets a new tag, which pods must pull.
func ContentTag(img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return "sha-" + d.Hex[:16], nil
}

// PushContent pushes img to repo (registry/repository) under its
// ContentTag unless the registry has that tag already with img's digest,
// and returns the reference and whether it pushed.
func PushContent(img v1.Image, repo string) (ref string, pushed bool, err error) {
	if strings.Contains(repo[strings.LastIndex(repo, "/")+1:], ":") {
		return "", false, fmt.Errorf("%s: want a repository without a tag", repo)
	}
	tag, err := ContentTag(img)
	if err != nil {
		return "", false, err
	}
	ref = repo + ":" + tag
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", false, err
	}
	want, err := img.Digest()
	if err != nil {
		return "", false, err
	}
	if desc, err := remote.Head(r, remote.WithTransport(transport)); err == nil && desc.Digest == want {
		return ref, false, nil
	}
	return ref, true, Push(img, ref)
}
