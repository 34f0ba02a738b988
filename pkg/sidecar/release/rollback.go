package release

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// Rollback makes to live again after the app failed on the current
// release, and restarts the app on it: to is a release still on disk, or
// "" for the image's own code (release zero), which boot.cjs runs when
// no current link exists. The failed release stays on disk until a later
// publish prunes it.
func (w *Workspace) Rollback(to string) error {
	if to == "" {
		w.mu.Lock()
		defer w.mu.Unlock()
		if err := os.Remove(filepath.Join(w.dir, sidecar.CurrentLink)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return w.Touch()
	}
	hex, ok := strings.CutPrefix(to, digest.Prefix)
	if !ok || !digest.IsHex(hex) {
		return fmt.Errorf("cannot roll back to %q: not a digest", to)
	}
	if !isDir(filepath.Join(w.releases, hex)) {
		return fmt.Errorf("cannot roll back to %s: it is no longer on disk", to)
	}
	return w.publish(context.Background(), "", hex)
}

// Has reports whether release d ("sha256:<hex>") is still on disk.
func (w *Workspace) Has(d string) bool {
	hex, ok := strings.CutPrefix(d, digest.Prefix)
	return ok && digest.IsHex(hex) && isDir(filepath.Join(w.releases, hex))
}

// rejectedFile records the digest that the health gate rolled back, so
// that a restarted fetcher does not try it again.
const rejectedFile = sidecar.StateDir + "/rejected"

// Reject records d as the release the app failed on; "" clears the
// record. The fetcher does not apply a rejected digest again until the
// Deployment asks for another one.
func (w *Workspace) Reject(d string) error {
	file := filepath.Join(w.dir, rejectedFile)
	if d == "" {
		if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	// A random name, which no leftover of the app's can take.
	f, err := os.CreateTemp(filepath.Join(w.dir, sidecar.StateDir), tempPrefix+"rejected-")
	if err != nil {
		return err
	}
	_, err = f.WriteString(d + "\n")
	if err == nil {
		err = f.Chmod(fileMode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), file)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Rejected returns the digest recorded by Reject, "" if none.
func (w *Workspace) Rejected() string {
	b, err := os.ReadFile(filepath.Join(w.dir, rejectedFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
