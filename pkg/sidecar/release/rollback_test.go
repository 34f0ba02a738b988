package release_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// agedBoot sets boot.cjs an hour back and returns whether it was touched since.
func agedBoot(t *testing.T, dir string) func() bool {
	t.Helper()
	boot := filepath.Join(dir, sidecar.BootFile)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(boot, old, old); err != nil {
		t.Fatal(err)
	}
	return func() bool {
		fi, err := os.Stat(boot)
		return err == nil && fi.ModTime().After(old.Add(time.Minute))
	}
}

func TestRollback(t *testing.T) {
	f := newFixture(t)
	a := f.publish("/a.tgz", "a")
	b := f.publish("/b.tgz", "b")
	touched := agedBoot(t, f.dir)
	if err := f.ws.Rollback(a.Digest); err != nil {
		t.Fatal(err)
	}
	if got := f.ws.Current(); got != a.Digest {
		t.Errorf("Current() = %q after the rollback, want %q", got, a.Digest)
	}
	if !touched() {
		t.Error("the rollback did not touch boot.cjs: the app would keep running the failed release")
	}
	if !f.ws.Has(b.Digest) {
		t.Error("the failed release was removed at once; a later publish prunes it")
	}
	if f.requests("/a.tgz") != 1 {
		t.Errorf("the rollback downloaded again")
	}

	touched = agedBoot(t, f.dir)
	if err := f.ws.Rollback(""); err != nil {
		t.Fatal(err)
	}
	if got := f.ws.Current(); got != "" {
		t.Errorf("Current() = %q after rolling back to the image's code, want none", got)
	}
	if _, err := os.Lstat(filepath.Join(f.dir, sidecar.CurrentLink)); !os.IsNotExist(err) {
		t.Errorf("current still exists: %v", err)
	}
	if !touched() {
		t.Error("rolling back to the image's code did not touch boot.cjs")
	}
	f.checkClean()

	for _, bad := range []string{"sha256:" + hexOf(a.Digest)[:10], "latest", "sha256:" + strings.Repeat("c", 64)} {
		if err := f.ws.Rollback(bad); err == nil {
			t.Errorf("Rollback(%q) = nil, want an error", bad)
		}
	}
}

func TestReject(t *testing.T) {
	f := newFixture(t)
	if got := f.ws.Rejected(); got != "" {
		t.Errorf("Rejected() = %q on a new workspace", got)
	}
	d := "sha256:" + hexOf(digestOf([]byte("x")))
	if err := f.ws.Reject(d); err != nil {
		t.Fatal(err)
	}
	reopened, err := release.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := reopened.Rejected(); got != d {
		t.Errorf("Rejected() after reopening = %q, want %q", got, d)
	}
	if err := reopened.Reject(""); err != nil {
		t.Fatal(err)
	}
	if got := reopened.Rejected(); got != "" {
		t.Errorf("Rejected() = %q after clearing", got)
	}
	if err := reopened.Reject(""); err != nil {
		t.Errorf("clearing twice: %v", err)
	}
}

// TestPinSurvivesPrune keeps the release to roll back to however many
// releases fail after it, within the same number kept on disk.
func TestPinSurvivesPrune(t *testing.T) {
	f := newFixture(t)
	good := f.publish("/good.tgz", "good")
	f.ws.Pin(good.Digest)
	var last string
	for _, v := range []string{"1", "2", "3", "4"} {
		last = f.publish("/v"+v+".tgz", v).Digest
	}
	if !f.ws.Has(good.Digest) {
		t.Fatal("the pinned release was pruned")
	}
	f.wait()
	entries, err := os.ReadDir(filepath.Join(f.dir, sidecar.ReleasesDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != sidecar.KeepReleases {
		t.Errorf("%d releases on disk, want %d with the pinned one among them", len(entries), sidecar.KeepReleases)
	}
	if err := f.ws.Rollback(good.Digest); err != nil {
		t.Fatal(err)
	}
	if !f.ws.Has(last) {
		t.Error("the release rolled back from was removed")
	}
}
