package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/aether-dev/aether-devhot/pkg/project"
)

func TestRunBuild(t *testing.T) {
	dir := t.TempDir()
	if err := runBuild(context.Background(), dir, "mkdir -p dist && echo 'module.exports = 1' > dist/a.js"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dist", "a.js")); err != nil {
		t.Errorf("the build ran elsewhere: %v", err)
	}
	err := runBuild(context.Background(), dir, "echo compiling; echo \"src/server.ts(3,7): error TS2322: Type 'number' is not assignable to type 'string'.\" >&2; exit 2")
	for _, want := range []string{`build "echo compiling;`, "failed (exit status 2), nothing pushed:", "\n  compiling\n", "\n  src/server.ts(3,7): error TS2322: Type 'number' is not assignable to type 'string'."} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("failed build: %v, want %q in it", err, want)
		}
	}
	err = runBuild(context.Background(), dir, "seq 1 100; exit 1")
	if err == nil || !strings.Contains(err.Error(), "… (60 lines before)\n  61\n") || !strings.HasSuffix(err.Error(), "\n  100") {
		t.Errorf("a long output is cut to its last lines: %v", err)
	}
}

// TestProjectConfig lays push's flags over devhot.yaml.
func TestProjectConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, project.File), []byte("build: npm run build\nout: [dist]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) (project.Config, error) {
		var b buildFlags
		f := pflag.NewFlagSet("push", pflag.ContinueOnError)
		b.add(f)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		return projectConfig(dir, b, f)
	}
	if c, err := parse(); err != nil || !reflect.DeepEqual(c, project.Config{Build: "npm run build", Out: []string{"dist"}}) {
		t.Errorf("the file alone: %+v, %v", c, err)
	}
	if c, err := parse("--out", "build,public", "--watch-build", "tsc -w"); err != nil ||
		!reflect.DeepEqual(c, project.Config{Build: "npm run build", Out: []string{"build", "public"}, WatchBuild: "tsc -w"}) {
		t.Errorf("flags over the file: %+v, %v", c, err)
	}
	if _, err := parse("--out", "../x"); err == nil || !strings.Contains(err.Error(), `out[0] "../x": must be a path inside the project`) {
		t.Errorf("a bad --out: %v", err)
	}
}
