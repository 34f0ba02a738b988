// Package registry reads image configs, and the package.json files that
// package-manager starts need, from container registries: the webhook's
// imageconfig.Source. Configs are cached by image digest (an immutable
// name), a tag's digest for a short while; every lookup is bounded by the
// admission request's context.
package registry

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
)

// Defaults of Options.
const (
	DefaultTagTTL        = 30 * time.Second
	DefaultCacheSize     = 512
	DefaultMaxLayerBytes = 256 << 20
	// maxPackageJSON bounds the package.json read.
	maxPackageJSON = 1 << 20
)

// Options configure a Registry.
type Options struct {
	// Keychain gives credentials per registry; nil is anonymous.
	Keychain authn.Keychain
	// Platform picks an image of a multi-platform index; the zero value
	// is linux on the webhook's own architecture.
	Platform v1.Platform
	// Transport reaches the registries; nil is remote.DefaultTransport.
	Transport http.RoundTripper
	// TagTTL is how long a tag's digest is trusted before it is asked
	// again; DefaultTagTTL when zero.
	TagTTL time.Duration
	// CacheSize bounds the images kept; DefaultCacheSize when zero.
	CacheSize int
	// MaxLayerBytes bounds the uncompressed layer bytes read to find one
	// package.json; DefaultMaxLayerBytes when zero.
	MaxLayerBytes int64
}

// Registry looks up images in their registries and caches what it found.
type Registry struct {
	o Options

	mu       sync.Mutex
	tags     map[string]tagEntry // reference -> digest reference
	configs  *cache[*imageconfig.Config]
	packages *cache[packageEntry]
	now      func() time.Time
}

type tagEntry struct {
	digest string
	at     time.Time
}

// packageEntry is a package.json lookup's result, a missing file included.
type packageEntry struct {
	pkg *imageconfig.PackageJSON
	err error
}

// New returns a Registry with o's settings.
func New(o Options) *Registry {
	if o.Platform.OS == "" {
		o.Platform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	if o.Keychain == nil {
		o.Keychain = authn.NewMultiKeychain()
	}
	if o.Transport == nil {
		o.Transport = remote.DefaultTransport
	}
	if o.TagTTL <= 0 {
		o.TagTTL = DefaultTagTTL
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MaxLayerBytes <= 0 {
		o.MaxLayerBytes = DefaultMaxLayerBytes
	}
	return &Registry{
		o:        o,
		tags:     map[string]tagEntry{},
		configs:  newCache[*imageconfig.Config](o.CacheSize),
		packages: newCache[packageEntry](o.CacheSize),
		now:      time.Now,
	}
}

// Source returns the lookups of one admission request, bound to ctx.
func (r *Registry) Source(ctx context.Context) imageconfig.Source {
	return &source{r: r, ctx: ctx, images: map[string]v1.Image{}}
}

// source is a Source bound to one request; it keeps the images it opened,
// so that a config and a package.json of one image cost one manifest.
type source struct {
	r      *Registry
	ctx    context.Context
	images map[string]v1.Image
}

func (s *source) options() []remote.Option {
	return []remote.Option{
		remote.WithContext(s.ctx),
		remote.WithAuthFromKeychain(s.r.o.Keychain),
		remote.WithPlatform(s.r.o.Platform),
		remote.WithTransport(s.r.o.Transport),
		remote.WithUserAgent("aether-devhot-webhook"),
	}
}

// digestOf resolves image to a reference by digest.
func (s *source) digestOf(image string) (name.Digest, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return name.Digest{}, &imageconfig.LookupError{Image: image, Reason: imageconfig.Invalid, Err: err}
	}
	if d, ok := ref.(name.Digest); ok {
		return d, nil
	}
	key := ref.Name()
	s.r.mu.Lock()
	e, ok := s.r.tags[key]
	s.r.mu.Unlock()
	if !ok || s.r.now().Sub(e.at) > s.r.o.TagTTL {
		desc, err := remote.Head(ref, s.options()...)
		if err != nil {
			return name.Digest{}, lookupError(s.ctx, image, err)
		}
		e = tagEntry{digest: ref.Context().Digest(desc.Digest.String()).Name(), at: s.r.now()}
		s.r.mu.Lock()
		if len(s.r.tags) >= s.r.o.CacheSize {
			clear(s.r.tags)
		}
		s.r.tags[key] = e
		s.r.mu.Unlock()
	}
	d, err := name.NewDigest(e.digest)
	if err != nil {
		return name.Digest{}, &imageconfig.LookupError{Image: image, Reason: imageconfig.Invalid, Err: err}
	}
	return d, nil
}

func (s *source) image(image string, d name.Digest) (v1.Image, error) {
	if img, ok := s.images[d.Name()]; ok {
		return img, nil
	}
	img, err := remote.Image(d, s.options()...)
	if err != nil {
		return nil, lookupError(s.ctx, image, err)
	}
	s.images[d.Name()] = img
	return img, nil
}

// Config implements imageconfig.Source.
func (s *source) Config(image string) (*imageconfig.Config, error) {
	d, err := s.digestOf(image)
	if err != nil {
		return nil, err
	}
	if c, ok := s.r.configs.get(d.Name()); ok {
		return clone(c), nil
	}
	img, err := s.image(image, d)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, lookupError(s.ctx, image, err)
	}
	c := &imageconfig.Config{
		Entrypoint: cf.Config.Entrypoint,
		Cmd:        cf.Config.Cmd,
		WorkingDir: cf.Config.WorkingDir,
		Env:        cf.Config.Env,
		User:       cf.Config.User,
	}
	s.r.configs.put(d.Name(), c)
	return clone(c), nil
}

func clone(c *imageconfig.Config) *imageconfig.Config {
	cc := *c
	return &cc
}

// PackageJSON implements imageconfig.Source. It reads the image's layers
// from the top down and stops at the first that has dir/package.json or
// hides it (a whiteout), so that an app's top layer, where package.json
// usually is, is all it reads.
func (s *source) PackageJSON(image, dir string) (*imageconfig.PackageJSON, error) {
	d, err := s.digestOf(image)
	if err != nil {
		return nil, err
	}
	file := path.Join("/", dir, "package.json")
	key := d.Name() + "\x00" + file
	if e, ok := s.r.packages.get(key); ok {
		return e.pkg, e.err
	}
	img, err := s.image(image, d)
	if err != nil {
		return nil, err
	}
	b, err := findFile(s.ctx, img, file, s.r.o.MaxLayerBytes)
	var e packageEntry
	switch {
	case errors.Is(err, errNotFound):
		e.err = &imageconfig.LookupError{Image: image, Reason: imageconfig.NotFound, Err: fmt.Errorf("no %s in the image", file)}
	case err != nil:
		return nil, lookupError(s.ctx, image, err)
	default:
		var pkg imageconfig.PackageJSON
		if err := json.Unmarshal(b, &pkg); err != nil {
			e.err = &imageconfig.LookupError{Image: image, Reason: imageconfig.Invalid, Err: fmt.Errorf("%s: %w", file, err)}
		} else {
			pkg.Path = file
			e.pkg = &pkg
		}
	}
	s.r.packages.put(key, e)
	return e.pkg, e.err
}

var errNotFound = errors.New("not found")

// findFile returns the content of file in img's filesystem, or errNotFound.
func findFile(ctx context.Context, img v1.Image, file string, budget int64) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	dir, base := path.Split(file)
	dir = path.Clean(dir)
	left := budget
	for i := len(layers) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, hidden, read, err := scanLayer(layers[i], file, dir, base, left)
		if errors.Is(err, errBudget) {
			return nil, fmt.Errorf("read %d MiB of layers without finding %s", budget>>20, file)
		}
		if err != nil || b != nil || hidden {
			if b == nil && err == nil {
				err = errNotFound
			}
			return b, err
		}
		left -= read
	}
	return nil, errNotFound
}

var errBudget = errors.New("over the byte budget")

// scanLayer looks for file in one layer. hidden is set when the layer
// deletes file or empties a directory above it (whiteouts), so that lower
// layers no longer count.
func scanLayer(l v1.Layer, file, dir, base string, budget int64) (content []byte, hidden bool, read int64, err error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, false, 0, err
	}
	defer rc.Close()
	cr := &countingReader{r: io.LimitReader(rc, budget+1)}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if cr.n > budget {
			return nil, false, cr.n, errBudget
		}
		if errors.Is(err, io.EOF) {
			return nil, hidden, cr.n, nil
		}
		if err != nil {
			return nil, false, cr.n, err
		}
		p := path.Clean("/" + h.Name)
		pd, pb := path.Split(p)
		pd = path.Clean(pd)
		switch {
		case p == file && (h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA):
			b, err := io.ReadAll(io.LimitReader(tr, maxPackageJSON+1))
			if err != nil {
				return nil, false, cr.n, err
			}
			if len(b) > maxPackageJSON {
				return nil, false, cr.n, fmt.Errorf("%s is over %d bytes", file, maxPackageJSON)
			}
			return b, false, cr.n, nil
		case pb == ".wh."+base && pd == dir:
			hidden = true
		case pb == ".wh..wh..opq" && isWithin(dir, pd):
			hidden = true
		case strings.HasPrefix(pb, ".wh.") && isWithin(dir, path.Join(pd, strings.TrimPrefix(pb, ".wh."))):
			hidden = true
		}
	}
}

// isWithin reports whether p is dir or below it.
func isWithin(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// lookupError turns a registry client's error into a LookupError whose
// reason tells the user what to fix.
func lookupError(ctx context.Context, image string, err error) *imageconfig.LookupError {
	le := &imageconfig.LookupError{Image: image, Reason: imageconfig.Unreachable, Err: err}
	var te *transport.Error
	switch {
	case errors.As(err, &te):
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			le.Reason = imageconfig.Unauthorized
		case te.StatusCode == http.StatusNotFound:
			le.Reason = imageconfig.NotFound
		default:
			for _, d := range te.Errors {
				switch d.Code {
				case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
					le.Reason = imageconfig.Unauthorized
				case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
					le.Reason = imageconfig.NotFound
				}
			}
		}
	case ctx.Err() != nil:
		le.Err = fmt.Errorf("no answer in time: %w", context.Cause(ctx))
	}
	return le
}
