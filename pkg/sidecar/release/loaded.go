package release

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// DefaultRetouch is how long to wait for a process to choose a published
// release before touching boot.cjs again. Node ignores a touch that
// arrives while it restarts, and a normal restart takes about 350 ms
// (NODE-WATCH.md), so 2 s means it was lost.
const DefaultRetouch = 2 * time.Second

// Loaded is the record boot.cjs writes to .aether/loaded each time it
// starts the app: the fetcher's only proof that the app runs new code.
type Loaded struct {
	// Digest is the release the process resolved current to.
	Digest string `json:"digest"`
	PID    int    `json:"pid"`
	// Time is when the record was written.
	Time time.Time `json:"time"`
	// Ready is false from the moment the process has chosen the release
	// until its entry has loaded (returned from require, or the import
	// settled), true after.
	Ready bool `json:"ready"`
	// AppDir is the app's directory in its image, where boot.cjs found it
	// (AETHER_APP_DIR resolved in the app's container): release zero runs
	// from there, and the image's node_modules are there.
	AppDir string `json:"appDir,omitempty"`
	// Exit is set when the process has exited on its own (process.exit,
	// an uncaught error, an empty event loop); nil while it runs, and
	// after a signal, which leaves no record.
	Exit *Exit `json:"exit,omitempty"`
	// Deps is set when the release resolves its packages through
	// sidecar.DepsDir: how boot.cjs got them before the entry loaded.
	Deps *Deps `json:"deps,omitempty"`
	// Installer is set when the process takes install requests
	// (InstallRequest): while it runs, the next release's dependencies
	// can be installed before that release is published.
	Installer bool `json:"installer,omitempty"`
}

// DepsState is how far boot.cjs has got with a release's dependencies.
type DepsState string

// The states of Deps. The first three let the entry load.
const (
	// DepsImage: the lockfile is the image's, and the release uses the
	// image's own node_modules; nothing was installed.
	DepsImage = DepsState(refresh.DepsImage)
	// DepsCached: a process of this pod got the lockfile's dependencies
	// before; nothing was installed.
	DepsCached = DepsState(refresh.DepsCached)
	// DepsInstalled: the image's package manager installed them, in Ms.
	DepsInstalled = DepsState(refresh.DepsInstalled)
	// DepsInstalling: the package manager runs; the health timeout waits.
	DepsInstalling DepsState = "installing"
	// DepsFailed: they could not be got, for Reason; the process exits.
	DepsFailed DepsState = "failed"
)

// Deps is what boot.cjs records of a release's dependencies.
type Deps struct {
	// Lockfile is the lockfile's name (one of sidecar.Lockfiles), Key its
	// sha256, the entry's name under sidecar.DepsDir.
	Lockfile string    `json:"lockfile"`
	Key      string    `json:"key"`
	State    DepsState `json:"state"`
	// Manager is the package manager that installs or installed them
	// (npm, pnpm, yarn).
	Manager string `json:"manager,omitempty"`
	// Ms is how long the install took, for DepsInstalled.
	Ms int64 `json:"ms,omitempty"`
	// Reason is DepsFailed's: refresh.ReasonNoPackageManager or
	// refresh.ReasonDepsInstall.
	Reason refresh.Reason `json:"reason,omitempty"`
	// Output is the last lines the package manager printed, for DepsFailed.
	Output string `json:"output,omitempty"`
	// Message says what failed, for DepsFailed, in an InstallResult (the
	// loaded record has it as the exit's error).
	Message string `json:"message,omitempty"`
}

// Exit is how a process of the app ended.
type Exit struct {
	Code int       `json:"code"`
	Time time.Time `json:"time"`
	// Error is the uncaught exception or rejection that ended it, if one did.
	Error *AppError `json:"error,omitempty"`
}

// AppError is an uncaught error of the app, as boot.cjs describes it.
type AppError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
	// Code is the error's code property, such as MODULE_NOT_FOUND.
	Code string `json:"code,omitempty"`
	// Frames are the top frames of the stack that point into the running
	// code, relative to its root ("at f (lib/a.js:2:21)"), or a
	// SyntaxError's location ("server.js:2").
	Frames []string `json:"frames,omitempty"`
}

// String is the error as a developer reads it: "Name [code]: message",
// then one frame a line, as in a stack.
func (e *AppError) String() string {
	var b strings.Builder
	b.WriteString(e.Name)
	if e.Code != "" {
		fmt.Fprintf(&b, " [%s]", e.Code)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	for _, f := range e.Frames {
		b.WriteString("\n    at ")
		b.WriteString(strings.TrimPrefix(f, "at "))
	}
	return b.String()
}

// String says how the process ended: its error, or its exit code.
func (e *Exit) String() string {
	if e.Error != nil {
		return e.Error.String()
	}
	return fmt.Sprintf("the process exited with code %d", e.Code)
}

// maxLoaded bounds what Loaded reads: boot.cjs's records are under 20 KiB
// (messages are cut at 2,000 characters, frames at 5, the package
// manager's output at 12 lines).
const maxLoaded = 64 << 10

// Loaded reads .aether/loaded. The error wraps fs.ErrNotExist if the app has
// not started yet.
func (w *Workspace) Loaded() (Loaded, error) {
	var l Loaded
	return l, w.readState(sidecar.LoadedFile, &l)
}

// readState reads into v a record that the app wrote under .aether. The
// app could put anything there, so only a regular file of at most
// maxLoaded bytes is read, and opening it never blocks (a FIFO would hold
// the fetcher forever).
func (w *Workspace) readState(file string, v any) error {
	name := filepath.Join(w.dir, file)
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", file)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxLoaded+1))
	if err != nil {
		return err
	}
	if len(b) > maxLoaded {
		return fmt.Errorf("%s is over %d bytes", file, maxLoaded)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}
