package imageconfig

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// Fixture is a file of image configs as their registries serve them, with
// where each was established: test/golden/images.yaml and
// test/golden/corpus/images.yaml.
type Fixture struct {
	Images []FixtureImage `json:"images"`
}

// FixtureImage is one image of a Fixture.
type FixtureImage struct {
	// Ref is the image as a container's image field names it.
	Ref string `json:"ref"`
	// Source is the Dockerfile the config was derived from, Base its final
	// FROM, and Note anything uncertain.
	Source string `json:"source,omitempty"`
	Base   string `json:"base,omitempty"`
	Note   string `json:"note,omitempty"`

	Entrypoint []string `json:"entrypoint"`
	Cmd        []string `json:"cmd"`
	WorkingDir string   `json:"workingDir"`
	User       string   `json:"user"`
	Env        []string `json:"env"`
	// PackageJSON is the package.json at WorkingDir, with its source.
	PackageJSON *struct {
		Source  string            `json:"source,omitempty"`
		Scripts map[string]string `json:"scripts"`
	} `json:"packageJSON,omitempty"`
}

// ParseFixture reads a Fixture strictly.
func ParseFixture(b []byte) (*Fixture, error) {
	var f Fixture
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// Add adds the fixture's images to s; an image already in s is an error.
func (s Static) Add(f *Fixture) error {
	for _, im := range f.Images {
		if _, dup := s[im.Ref]; dup {
			return fmt.Errorf("image %s is listed twice", im.Ref)
		}
		si := StaticImage{Config: Config{Entrypoint: im.Entrypoint, Cmd: im.Cmd, WorkingDir: im.WorkingDir, Env: im.Env, User: im.User}}
		if im.PackageJSON != nil {
			si.PackageJSON = &PackageJSON{Scripts: im.PackageJSON.Scripts}
		}
		s[im.Ref] = si
	}
	return nil
}
