// Package corpus holds public Deployments of Node.js services with their
// provenance (see README.md). This test checks that every case parses strictly
// as an apps/v1 Deployment, carries its provenance header, and that every image
// whose config matters is described in images.yaml or knowingly absent.
package corpus

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// absent lists the images that images.yaml leaves out on purpose: the test
// treats their registry as unreadable. Keep in sync with README.md.
var absent = map[string]string{
	"istio/examples-bookinfo-ratings-v1:1.10.1": "Dockerfile for this tag not established",
	"node-example":             "skaffold-built local image",
	"nodejs-guestbook-backend": "skaffold-built local image",
	"<LOCATION>-docker.pkg.dev/<YOUR_PROJECT_ID>/gke-cloud-sql-repo/gke-sql:latest": "placeholder ref shared by several samples",
	"n8nio/n8n:1.122.4": "Dockerfile for this tag not established",
	"ismail":            "bare local-looking name, no registry established",
	"ghrc.io/dapr/samples/pubsub-react-form:latest":                    "registry ghrc.io is a typo for ghcr.io; it serves nothing",
	"public.ecr.aws/aws-containers/retail-store-sample-checkout:1.2.1": "Dockerfile for this tag not established (the stored versions are an old one and a fork's)",
	"mongo:7":                          "official mongo image, not a Node one; left undescribed",
	"bitnami/node:9.5.0-r0-prod":       "bitnami-docker-node Dockerfile for this tag not established",
	"twentycrm/twenty:latest":          "the Dockerfile it is built from is not established (the stored versions include a fork's)",
	"ghcr.io/requarks/wiki:3.0.0-beta": "the chart's placeholder appVersion; the published tags carry a run number",
}

// Image is one entry of images.yaml.
type Image struct {
	Ref         string       `json:"ref"`
	Source      string       `json:"source"`
	Base        string       `json:"base"`
	Entrypoint  []string     `json:"entrypoint"`
	Cmd         []string     `json:"cmd"`
	WorkingDir  string       `json:"workingDir"`
	User        string       `json:"user"`
	Env         []string     `json:"env"`
	PackageJSON *PackageJSON `json:"packageJSON,omitempty"`
	Note        string       `json:"note,omitempty"`
}

// PackageJSON is the package.json at the image's working directory.
type PackageJSON struct {
	Source  string            `json:"source"`
	Scripts map[string]string `json:"scripts"`
}

var (
	sourceRE = regexp.MustCompile(`^https://github\.com/[^/]+/[^/]+/blob/[0-9a-f]{40}/\S+$`)
	expectRE = regexp.MustCompile(`^(deny \S.*|app=\S+ entry=\S+ init=\S+)$`)
)

// header returns the "# key: value" lines before the first YAML line.
func header(b []byte) map[string]string {
	h := map[string]string{}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		line, ok := strings.CutPrefix(s.Text(), "# ")
		if !ok {
			break
		}
		if k, v, ok := strings.Cut(line, ": "); ok {
			h[k] = v
		}
	}
	return h
}

func loadImages(t *testing.T) map[string]Image {
	t.Helper()
	b, err := os.ReadFile("images.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Images []Image `json:"images"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("images.yaml: %v", err)
	}
	m := map[string]Image{}
	for _, im := range f.Images {
		if _, dup := m[im.Ref]; dup {
			t.Errorf("images.yaml: %s listed twice", im.Ref)
		}
		if !sourceRE.MatchString(im.Source) {
			t.Errorf("images.yaml: %s: source %q is not a GitHub blob URL at a 40-hex commit", im.Ref, im.Source)
		}
		if im.PackageJSON != nil && !sourceRE.MatchString(im.PackageJSON.Source) {
			t.Errorf("images.yaml: %s: packageJSON source %q is not a GitHub blob URL at a 40-hex commit", im.Ref, im.PackageJSON.Source)
		}
		if _, ok := absent[im.Ref]; ok {
			t.Errorf("images.yaml: %s is also listed as absent", im.Ref)
		}
		m[im.Ref] = im
	}
	return m
}

// runsPackageScript reports whether a container starts through npm, yarn or
// pnpm, directly or inside a sh -c script.
func runsPackageScript(c corev1.Container) bool {
	argv := append(append([]string{}, c.Command...), c.Args...)
	if len(argv) == 0 {
		return false
	}
	switch path.Base(argv[0]) {
	case "npm", "npx", "yarn", "pnpm":
		return true
	case "sh", "bash":
		for _, a := range argv[1:] {
			for _, pm := range []string{"npm ", "yarn ", "pnpm "} {
				if strings.Contains(a, pm) {
					return true
				}
			}
		}
	}
	return false
}

func TestCorpus(t *testing.T) {
	images := loadImages(t)
	used := map[string]bool{}
	ins, err := filepath.Glob("*.in.yaml")
	if err != nil || len(ins) < 38 {
		t.Fatalf("want at least 38 cases, have %d (%v)", len(ins), err)
	}
	for _, in := range ins {
		t.Run(strings.TrimSuffix(in, ".in.yaml"), func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			h := header(b)
			for _, k := range []string{"source", "rendered", "changes", "shape", "expect"} {
				if h[k] == "" {
					t.Errorf("no %q header line", k)
				}
			}
			if !sourceRE.MatchString(h["source"]) {
				t.Errorf("source %q is not a GitHub blob URL at a 40-hex commit", h["source"])
			}
			if !expectRE.MatchString(h["expect"]) {
				t.Errorf("expect %q is neither `deny <reason>` nor `app=.. entry=.. init=..`", h["expect"])
			}
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict(b, &d); err != nil {
				t.Fatalf("strict parse: %v", err)
			}
			if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
				t.Errorf("got %s %s, want apps/v1 Deployment", d.APIVersion, d.Kind)
			}
			if d.Labels["aether.dev/dev-hot"] != "true" {
				t.Errorf("label aether.dev/dev-hot=true missing")
			}
			if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
				t.Errorf("no spec.selector.matchLabels")
			}
			spec := d.Spec.Template.Spec
			if app, ok := strings.CutPrefix(h["expect"], "app="); ok {
				f := strings.Fields(app)
				if !hasContainer(spec.Containers, f[0]) {
					t.Errorf("expect names app container %q, which the Deployment lacks", f[0])
				}
				// A rewrite needs the app image's config (node version, workdir,
				// entrypoint): an expectation to rewrite must rest on a described image.
				for _, c := range spec.Containers {
					if _, ok := images[c.Image]; c.Name == f[0] && !ok {
						t.Errorf("expect rewrites container %q, whose image %s is not in images.yaml", f[0], c.Image)
					}
				}
				if init := strings.TrimPrefix(f[2], "init="); init != "none" && !hasContainer(spec.InitContainers, init) {
					t.Errorf("expect names initContainer %q, which the Deployment lacks", init)
				}
			}
			for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
				if len(c.Command) > 0 && !runsPackageScript(c) {
					continue
				}
				used[c.Image] = true
				if _, ok := images[c.Image]; ok {
					continue
				}
				if _, ok := absent[c.Image]; !ok {
					t.Errorf("container %s: image %s is neither in images.yaml nor listed as absent", c.Name, c.Image)
				}
			}
		})
	}
	for ref := range images {
		if !used[ref] {
			t.Errorf("images.yaml: %s is used by no case", ref)
		}
	}
	for ref := range absent {
		if !used[ref] {
			t.Errorf("absent: %s is used by no case", ref)
		}
	}
}

func hasContainer(cs []corev1.Container, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}
