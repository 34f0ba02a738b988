package controlplane

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// RequireEnv makes a missing control plane a failure instead of a skip;
// `make test` sets it.
const RequireEnv = "AETHER_REQUIRE_INTEGRATION"

// Main is the TestMain of a suite that runs on the local control plane.
// Without the assets it skips the suite with the reason, or fails it when
// RequireEnv is set. Otherwise it starts the control plane in a fresh
// temporary directory, calls setup (which may be nil) with it, runs the
// tests, then calls setup's teardown and stops the control plane. suite
// names the suite in what it prints.
func Main(m *testing.M, suite string, setup func(cp *ControlPlane) (teardown func(), err error)) {
	if _, err := Assets(); err != nil {
		if os.Getenv(RequireEnv) != "" {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "SKIP %s tests: %v\n", suite, err)
		os.Exit(0)
	}
	os.Exit(run(m, suite, setup))
}

func run(m *testing.M, suite string, setup func(*ControlPlane) (func(), error)) int {
	dir, err := os.MkdirTemp("", "aether-"+suite+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	started := time.Now()
	cp, err := Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cp.Stop()
	if setup != nil {
		teardown, err := setup(cp)
		if err != nil {
			fmt.Fprintf(os.Stderr, "setting up the %s suite: %v\n", suite, err)
			return 1
		}
		if teardown != nil {
			defer teardown()
		}
	}
	fmt.Fprintf(os.Stderr, "%s: control plane up in %s\n", suite, time.Since(started).Round(time.Millisecond))
	return m.Run()
}

// NamespaceName turns the test's name into a namespace name with prefix.
func NamespaceName(prefix string, t testing.TB) string {
	name := prefix + strings.ToLower(nonAlnum.ReplaceAllString(t.Name(), "-"))
	if len(name) > 63 {
		name = name[:63]
	}
	return strings.Trim(name, "-")
}

var nonAlnum = regexp.MustCompile(`[^A-Za-z0-9]+`)

// GoBuild builds the command pkg of this module (e.g. "./cmd/fetcher")
// into dir, and returns the binary's path.
func GoBuild(dir, pkg string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", out, pkg)
	build.Dir = RepoRoot()
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out, nil
}
