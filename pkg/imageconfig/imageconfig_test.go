package imageconfig

import (
	"testing"
)

func TestStaticAndFixture(t *testing.T) {
	f, err := ParseFixture([]byte(`images:
- ref: registry.example.com/api:1
  source: https://github.com/o/r/blob/0000000000000000000000000000000000000000/Dockerfile
  entrypoint: [docker-entrypoint.sh]
  cmd: [npm, start]
  workingDir: /app
  env: [PATH=/bin, NODE_VERSION=20.20.2]
  packageJSON:
    scripts: {start: node server.js}
- ref: nginx:1.27
  entrypoint: [/docker-entrypoint.sh]
  cmd: [nginx, -g, daemon off;]
`))
	if err != nil {
		t.Fatal(err)
	}
	s := Static{}
	if err := s.Add(f); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(f); err == nil {
		t.Error("adding the same images twice must fail")
	}
	c, err := s.Config("registry.example.com/api:1")
	if err != nil || c.WorkingDir != "/app" || c.Getenv("NODE_VERSION") != "20.20.2" || c.Getenv("HOME") != "" {
		t.Fatalf("config %+v, %v", c, err)
	}
	if p, err := s.PackageJSON("registry.example.com/api:1", "/app/"); err != nil || p.Scripts["start"] != "node server.js" {
		t.Fatalf("package.json %+v, %v", p, err)
	}
	for _, c := range []struct {
		image, dir string
		want       Reason
	}{
		{"registry.example.com/api:1", "/srv", NotFound},
		{"nginx:1.27", "/", NotFound},
		{"unknown:1", "/", NotFound},
	} {
		if _, err := s.PackageJSON(c.image, c.dir); ReasonOf(err) != c.want {
			t.Errorf("PackageJSON(%s, %s): %v, want %s", c.image, c.dir, err, c.want)
		}
	}
	if _, err := (None{}).Config("x"); ReasonOf(err) != Disabled {
		t.Errorf("None: %v", err)
	}
	if _, err := ParseFixture([]byte("images:\n- ref: x\n  surprise: 1\n")); err == nil {
		t.Error("an unknown field must fail the strict parse")
	}
}
