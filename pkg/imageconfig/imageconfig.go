// Package imageconfig is what the webhook knows of a container image: how
// it starts (ENTRYPOINT, CMD, WORKDIR, ENV) and, for a package-manager
// start such as `npm start`, the scripts of the package.json it holds.
// Source is the seam between the pure mutation and the registries: the
// mutation asks a Source, and only when a container leaves the command to
// its image; package registry implements it against real registries, and
// Static serves a fixed set for tests.
package imageconfig

import (
	"errors"
	"fmt"
	"strings"
)

// Config is the part of an image's config that decides how it starts.
type Config struct {
	// Entrypoint and Cmd are the image's ENTRYPOINT and CMD, after the
	// inheritance rules of the build.
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	// WorkingDir is the image's WORKDIR, "" for the root.
	WorkingDir string `json:"workingDir,omitempty"`
	// Env is the image's ENV, as NAME=value.
	Env []string `json:"env,omitempty"`
	// User is the image's USER.
	User string `json:"user,omitempty"`
}

// Getenv returns the value of the image's ENV name, "" if unset.
func (c *Config) Getenv(name string) string {
	for _, e := range c.Env {
		if k, v, ok := strings.Cut(e, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// PackageJSON is the part of an image's package.json that the mutation
// reads.
type PackageJSON struct {
	// Path is where the file is in the image.
	Path string `json:"-"`
	// Scripts are its "scripts".
	Scripts map[string]string `json:"scripts"`
}

// Source looks up images. Implementations bound their time themselves (the
// registry one by the admission request's deadline) and return a
// *LookupError.
type Source interface {
	// Config returns the config of image, as a container's image field
	// names it.
	Config(image string) (*Config, error)
	// PackageJSON returns the package.json at dir/package.json in image.
	// A missing file is a *LookupError with reason NotFound.
	PackageJSON(image, dir string) (*PackageJSON, error)
}

// Reason is why a lookup failed, for the denial's advice.
type Reason string

// Reasons of a LookupError.
const (
	// Disabled: the webhook looks up no images (--image-lookup=false).
	Disabled Reason = "lookups are disabled"
	// Unauthorized: the registry wants credentials the webhook lacks.
	Unauthorized Reason = "unauthorized"
	// NotFound: no such image, tag, or file in the image.
	NotFound Reason = "not found"
	// Unreachable: the registry did not answer, or not in time.
	Unreachable Reason = "unreachable"
	// Invalid: the reference or what the registry sent cannot be used.
	Invalid Reason = "invalid"
)

// LookupError reports a failed lookup of Image.
type LookupError struct {
	Image  string
	Reason Reason
	Err    error
}

func (e *LookupError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("image %s: %s", e.Image, e.Reason)
	}
	return fmt.Sprintf("image %s: %s: %v", e.Image, e.Reason, e.Err)
}

func (e *LookupError) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of a *LookupError in err's chain, or Invalid.
func ReasonOf(err error) Reason {
	if le, ok := errors.AsType[*LookupError](err); ok {
		return le.Reason
	}
	return Invalid
}

// None is a Source that looks up nothing: every lookup fails with
// Disabled. It is what a webhook run with --image-lookup=false asks.
type None struct{}

// Config implements Source.
func (None) Config(image string) (*Config, error) {
	return nil, &LookupError{Image: image, Reason: Disabled}
}

// PackageJSON implements Source.
func (None) PackageJSON(image, dir string) (*PackageJSON, error) {
	return nil, &LookupError{Image: image, Reason: Disabled}
}

// Static is a Source over a fixed set of images, for tests and fixtures.
type Static map[string]StaticImage

// StaticImage is one image of a Static source.
type StaticImage struct {
	Config
	// PackageJSON is the package.json at Config.WorkingDir, if any.
	PackageJSON *PackageJSON `json:"packageJSON,omitempty"`
}

// Config implements Source.
func (s Static) Config(image string) (*Config, error) {
	i, ok := s[image]
	if !ok {
		return nil, &LookupError{Image: image, Reason: NotFound, Err: errors.New("not in the fixture")}
	}
	c := i.Config
	return &c, nil
}

// PackageJSON implements Source.
func (s Static) PackageJSON(image, dir string) (*PackageJSON, error) {
	i, ok := s[image]
	if !ok {
		return nil, &LookupError{Image: image, Reason: NotFound, Err: errors.New("not in the fixture")}
	}
	if i.PackageJSON == nil || strings.TrimSuffix(dir, "/") != strings.TrimSuffix(i.WorkingDir, "/") {
		return nil, &LookupError{Image: image, Reason: NotFound, Err: fmt.Errorf("no %s/package.json", strings.TrimSuffix(dir, "/"))}
	}
	p := *i.PackageJSON
	return &p, nil
}
