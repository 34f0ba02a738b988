package release_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// Some tests need what a pod has and a test process has not: a volume that
// fills up, or a fetcher under another uid than the app's. They run again
// in a child process of the test binary, which the parent sets up, and the
// parent reports the child's result as its own.

// envChild tells the child process which setup it runs in, and where.
const envChild = "AETHER_RELEASE_TEST_CHILD"

// inChild reports whether this process is the child of runChild, and if
// so the directory that its parent prepared.
func inChild() (string, bool) {
	return os.LookupEnv(envChild)
}

// tmpfs returns a tmpfs of size (as mount -o size= takes it), mounted in a mount namespace
// of the test's own: the calling test runs again in a child process that
// has it, and in the parent tmpfs returns false once the child has
// run. It skips the test where namespaces or tmpfs are not allowed.
func tmpfs(t *testing.T, size string) (string, bool) {
	t.Helper()
	if dir, ok := inChild(); ok {
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			t.Skipf("cannot make mounts private: %v", err)
		}
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size); err != nil {
			t.Skipf("cannot mount a tmpfs: %v", err)
		}
		return dir, true
	}
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	runChild(t, os.Args[0], t.TempDir(), attr)
	return "", false
}

// runChild runs the calling test alone in the test binary bin, with attr
// and the child's directory dir, and fails, skips or logs as it did.
func runChild(t *testing.T, bin, dir string, attr *syscall.SysProcAttr) {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), envChild+"="+dir)
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	text := string(out)
	switch {
	case err != nil && cmd.ProcessState == nil:
		t.Skipf("cannot start the child process: %v", err)
	case strings.Contains(text, "--- SKIP: "+t.Name()):
		t.Skipf("the child skipped:\n%s", text)
	case err != nil:
		t.Fatalf("the child failed: %v\n%s", err, text)
	case !strings.Contains(text, "--- PASS: "+t.Name()):
		t.Fatalf("the child did not run the test:\n%s", text)
	}
	t.Logf("the child passed:\n%s", text)
}

// asOtherUser runs the calling test again as uid and gid nobody, in a
// child process whose directory the parent made and gave to nobody; prepare,
// run as root first in the parent, puts there what nobody must cope with.
// In the parent it returns false once the child has run; it skips unless
// the test runs as root.
func asOtherUser(t *testing.T, prepare func(dir string)) (string, bool) {
	t.Helper()
	if dir, ok := inChild(); ok {
		return dir, true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to leave a file that another user cannot remove")
	}
	const nobody = 65534
	// The test binary lives in a directory only root may enter.
	bins := t.TempDir()
	bin := filepath.Join(bins, "release.test")
	copyFile(t, os.Args[0], bin)
	for _, d := range []string{filepath.Dir(bins), bins} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(bins, "ws")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	prepare(dir)
	runChild(t, bin, dir, &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}})
	return "", false
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
