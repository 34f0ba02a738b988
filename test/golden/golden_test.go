// Package golden runs every test/golden/<case>.in.yaml, and every public
// Deployment of test/golden/corpus, through mutate.Deployment and compares
// the result with <case>.out.yaml; the images the cases leave their command
// to are the fixtures images.yaml and corpus/images.yaml. Every injection
// is also checked to do no harm (noHarm), and every corpus case against the
// expectation its header states. Regenerate with: go test ./test/golden -update
package golden

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
	"github.com/aether-dev/aether-devhot/pkg/mutate"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

var update = flag.Bool("update", false, "rewrite the .out.yaml files from the current code")

// Image is the fetcher image every golden case injects.
const Image = "aether-devhot:golden"

// A case's input may start with directives in comments:
//
//	# mode: legacy             sidecar mode (default native)
//	# then: remove-label       inject, then remove the label and mutate again
//	# then: image app=node:22  inject, then change that container's image and mutate again
type directives struct {
	mode sidecar.Mode
	then []string
}

func parseDirectives(in []byte) directives {
	d := directives{mode: sidecar.ModeNative}
	s := bufio.NewScanner(bytes.NewReader(in))
	for s.Scan() {
		line, ok := strings.CutPrefix(s.Text(), "# ")
		if !ok {
			break
		}
		if v, ok := strings.CutPrefix(line, "mode: "); ok {
			d.mode = sidecar.Mode(v)
		}
		if v, ok := strings.CutPrefix(line, "then: "); ok {
			d.then = append(d.then, v)
		}
	}
	return d
}

// caseGlobs are where the inputs are: the synthetic cases, then the
// corpus of public Deployments.
var caseGlobs = []string{"*.in.yaml", "corpus/*.in.yaml"}

func TestGolden(t *testing.T) {
	images := loadImages(t, "images.yaml", "corpus/images.yaml")
	n := 0
	for _, g := range caseGlobs {
		ins, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range ins {
			name := strings.TrimSuffix(in, ".in.yaml")
			t.Run(name, func(t *testing.T) { runCase(t, name, images) })
			n++
		}
	}
	if n == 0 {
		t.Fatal("no golden inputs")
	}
}

// TestNoStaleGoldenFiles fails on an .out.yaml whose input is gone.
func TestNoStaleGoldenFiles(t *testing.T) {
	outs, _ := filepath.Glob("*.out.yaml")
	more, _ := filepath.Glob("corpus/*.out.yaml")
	for _, out := range append(outs, more...) {
		if _, err := os.Stat(strings.TrimSuffix(out, ".out.yaml") + ".in.yaml"); err != nil {
			t.Errorf("%s has no input; delete it", out)
		}
	}
}

func runCase(t *testing.T, name string, images imageconfig.Source) {
	raw, err := os.ReadFile(name + ".in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := parseDirectives(raw)
	opts := mutate.Options{FetcherImage: Image, Mode: dir.mode, Images: images}
	var in appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &in); err != nil {
		t.Fatalf("input: %v", err)
	}

	got, outcome, warnings, err := mutate.Deployment(&in, opts)
	for _, step := range dir.then {
		if err != nil {
			t.Fatalf("%s before step %q", err, step)
		}
		got = applyStep(t, got, step)
		got, outcome, warnings, err = mutate.Deployment(got, opts)
	}
	rendered := render(t, got, outcome, warnings, err)
	compareGolden(t, name+".out.yaml", rendered)
	if want, ok := header(raw)["expect"]; ok {
		checkExpect(t, want, got, err)
	}
	if err == nil && outcome == mutate.Injected && len(dir.then) == 0 {
		noHarm(t, &in, got)
	}

	if err != nil {
		var den *mutate.Denial
		if !errors.As(err, &den) {
			t.Fatalf("error is not a *mutate.Denial: %v", err)
		}
		return
	}
	t.Run("idempotent", func(t *testing.T) {
		again, _, _, err := mutate.Deployment(got, opts)
		if err != nil {
			t.Fatalf("second pass: %v", err)
		}
		if a, b := mustJSON(t, got), mustJSON(t, again); !bytes.Equal(a, b) {
			t.Fatalf("second pass differs:\nfirst:  %s\nsecond: %s", a, b)
		}
	})
	if outcome == mutate.Reverted {
		t.Run("revert-restores-original", func(t *testing.T) {
			orig := in.DeepCopy()
			delete(orig.Labels, annotations.DevHot)
			if len(orig.Labels) == 0 {
				orig.Labels = nil
			}
			if a, b := mustJSON(t, orig), mustJSON(t, got); !bytes.Equal(a, b) {
				t.Fatalf("revert is not the original:\noriginal: %s\nreverted: %s", a, b)
			}
		})
	}
	if outcome == mutate.Injected && len(dir.then) > 0 {
		t.Run("same-as-fresh-injection", func(t *testing.T) {
			// Re-injecting an injected object after a user change must equal
			// injecting the changed original.
			fresh := in.DeepCopy()
			for _, step := range dir.then {
				fresh = applyStep(t, fresh, step)
			}
			want, _, _, err := mutate.Deployment(fresh, opts)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := mustJSON(t, want), mustJSON(t, got); !bytes.Equal(a, b) {
				t.Fatalf("re-injection differs from fresh injection:\nfresh: %s\ngot:   %s", a, b)
			}
		})
	}
}

func applyStep(t *testing.T, d *appsv1.Deployment, step string) *appsv1.Deployment {
	t.Helper()
	d = d.DeepCopy()
	switch verb, arg, _ := strings.Cut(step, " "); verb {
	case "remove-label":
		delete(d.Labels, annotations.DevHot)
		if len(d.Labels) == 0 {
			d.Labels = nil
		}
	case "image":
		name, image, _ := strings.Cut(arg, "=")
		found := false
		for i := range d.Spec.Template.Spec.Containers {
			if d.Spec.Template.Spec.Containers[i].Name == name {
				d.Spec.Template.Spec.Containers[i].Image, found = image, true
			}
		}
		if !found {
			t.Fatalf("step %q: no container %q", step, name)
		}
	default:
		t.Fatalf("unknown step %q", step)
	}
	return d
}

func render(t *testing.T, d *appsv1.Deployment, outcome mutate.Outcome, warnings []string, err error) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("# Generated by go test ./test/golden -update; do not edit.\n")
	if err != nil {
		fmt.Fprintf(&b, "# denied: %s\n", err)
		return b.Bytes()
	}
	fmt.Fprintf(&b, "# outcome: %s\n", outcome)
	for _, w := range warnings {
		fmt.Fprintf(&b, "# warning: %s\n", w)
	}
	y, err := yaml.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	b.Write(y)
	return b.Bytes()
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./test/golden -update)", err)
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("%s is stale (run: go test ./test/golden -update); got:\n%s", path, got)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
